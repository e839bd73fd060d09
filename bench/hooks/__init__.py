"""Webhook intake and webhook-await benchmarks (``bench.triggers_bench``, ``bench.awaits_bench``):
the flowtide app they load, a small keep-alive HTTP load generator and the peers' glue."""
