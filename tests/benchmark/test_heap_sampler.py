"""``BENCH_MEMORY``: the benchmark's record of what held the Python heap at its biggest in each part."""

from __future__ import annotations

from integrations.benchmark.worker import HeapSampler


def test_each_part_names_the_line_that_held_its_biggest_heap_then_starts_afresh(tmp_path):
    path = tmp_path / "memory.txt"
    sampler = HeapSampler(str(path))
    try:
        held = [bytes(1000) for _ in range(20_000)]  # about 20 MB, held at the end of the part
        sampler.part("reference_data")
        del held
        sampler.part("records")
    finally:
        sampler.close()
    text = path.read_text(encoding="utf-8")
    first, second = text.split("== records")
    size = float(first.split("biggest traced heap ")[1].split(" MiB")[0])
    assert size >= 19
    top = first.split("\n")[1:3]
    assert "20000 blocks" in top[0] or "20001 blocks" in top[0], top
    assert "test_heap_sampler.py" in top[1]
    assert float(second.split("biggest traced heap ")[1].split(" MiB")[0]) < size / 2  # the next part's own
