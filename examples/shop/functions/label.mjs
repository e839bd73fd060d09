// A step written in JavaScript (runtime="node"), run by the flowtide-worker SDK in sdks/node.
// It gets the step's input and a context like the Python one: ctx.runId, ctx.log, ctx.state,
// ctx.emit, ctx.flows. State written here is committed together with the step's completion.
export default async function label(shipped, ctx) {
  const order = await ctx.state.get('order');
  const weight = order.items.reduce((sum, item) => sum + item.quantity * 0.5, 0);
  const label = { order_id: order.id, carrier: weight > 10 ? 'freight' : 'parcel', weight_kg: weight };
  ctx.log.info('label printed', { order_id: order.id, carrier: label.carrier });
  await ctx.state.set('label', label);
  return label;
}
