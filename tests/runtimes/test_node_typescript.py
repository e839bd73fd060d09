"""`.ts` handlers run through a TypeScript loader (tsx, a devDependency of sdks/node)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flowtide import function
from flowtide.registry import Registry
from flowtide.runtimes import Invocation, RuntimePools
from tests.runtimes._util import RecordingHost, assert_no_leftovers

LOADER = Path(__file__).resolve().parents[2] / "sdks/node/node_modules/tsx/dist/loader.mjs"
pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not LOADER.is_file(), reason="tsx is not installed (run `npm ci` in sdks/node)"
    ),
]

HANDLER = """
interface Order { id: number; items: string[] }
export default async function (order: Order, ctx: { step: string; log: any }) {
  const count: number = order.items.length;
  console.log(`order ${order.id} has ${count} items`);
  return { id: order.id, count, step: ctx.step };
}
"""


async def test_a_ts_handler_runs_with_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWTIDE_NODE_TS_LOADER", LOADER.as_uri())
    (tmp_path / "count.ts").write_text(HANDLER)
    fn = function("count", runtime="node", handler=str(tmp_path / "count.ts"))
    Registry().add(fn)  # load-time checks accept a .ts file without importing it
    pools = RuntimePools(cwd=str(tmp_path))
    host = RecordingHost()
    try:
        pool = pools.get("node", ts=True)
        out = await pool.invoke(
            Invocation(str(tmp_path / "count.ts"), {"id": 3, "items": ["a", "b"]}, {"step": "c"}),
            host,
        )
    finally:
        await pools.stop()
    assert out.ok, out.error
    assert out.value == {"id": 3, "count": 2, "step": "c"}
    assert ("info", "order 3 has 2 items", {"stream": "stdout"}) in host.logs
    assert_no_leftovers(pool.spawned)
