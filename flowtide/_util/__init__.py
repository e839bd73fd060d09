"""Small pure helpers shared by every layer: durations, ids, JSON, clocks."""
