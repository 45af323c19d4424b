"""Memory-map pictures: rendered to PNG by a real SVG renderer (rsvg-convert) and checked pixel by pixel."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from remoteproc.cli import main
from remoteproc.firmware import firmware_info
from remoteproc.memory_map import COLOURS, OVERLAP, MapRegion, firmware_regions, layout_regions, plan, render_svg
from resource_table import plan_layout


def _png(svg: Path) -> Image.Image:
    renderer = shutil.which("rsvg-convert")
    assert renderer, "rsvg-convert is missing: run ./scripts/setup (Debian package librsvg2-bin)"
    png = svg.with_suffix(".png")
    subprocess.run([renderer, str(svg), "-o", str(png)], check=True)
    return Image.open(png).convert("RGB")


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _column(image: Image.Image, x: int) -> list[tuple[int, int, int]]:
    """The distinct fill colours met going down column ``x`` (runs of at least 4 pixels: no borders, no text)."""
    runs: list[tuple[tuple[int, int, int], int]] = []
    for y in range(image.height):
        pixel = image.getpixel((x, y))
        assert isinstance(pixel, tuple)
        colour = (pixel[0], pixel[1], pixel[2])
        if runs and runs[-1][0] == colour:
            runs[-1] = (colour, runs[-1][1] + 1)
        else:
            runs.append((colour, 1))
    seen = [c for c, n in runs if n >= 4 and c not in ((255, 255, 255), (221, 221, 221))]
    return [c for i, c in enumerate(seen) if i == 0 or seen[i - 1] != c]


def test_layout_picture_shows_every_vring_part_and_pool_in_address_order(tmp_path: Path) -> None:
    svg = tmp_path / "layout.svg"
    assert main(["layout", "--base", "0x80100000", "--num", "256", "--svg", str(svg)]) == 0
    image = _png(svg)
    layout = plan_layout(base=0x80100000, vring_num=256)
    drawing = plan(layout_regions(layout))
    # going down the lane near its right edge (free of text), the fills come in address order
    lane = drawing.box("vring0.desc")
    colours = _column(image, int(lane.x + lane.width - 6))
    kinds = ["desc", "avail", "used", "desc", "avail", "used", "rx-buffers", "tx-buffers"]
    assert colours == [_rgb(COLOURS[k]) for k in kinds]
    # each region where the plan put it, and bigger regions drawn taller
    for box in drawing.boxes:
        x, y = int(box.x + box.width - 6), int(box.y + box.height / 2)
        assert image.getpixel((x, y))[:3] == _rgb(box.fill), box.region.name
    assert drawing.box("rx-buffers").height > drawing.box("vring0.used").height > drawing.box("vring0.avail").height
    assert OVERLAP not in svg.read_text()  # a computed layout never overlaps


def test_firmware_picture_nests_the_table_and_trace_in_their_segment(tmp_path: Path, services_firmware: Path) -> None:
    svg = tmp_path / "fw.svg"
    assert main(["info", str(services_firmware), "--svg", str(svg)]) == 0
    image = _png(svg)
    regions = firmware_regions(firmware_info(services_firmware))
    names = {r.name for r in regions}
    assert {".resource_table", "trace0", "vdev0buffer", "segment 0 R-X"} <= names
    drawing = plan(regions)
    table, trace = drawing.box(".resource_table"), drawing.box("trace0")
    # the table and the trace buffer lie inside segment 2: drawn beside it, at its addresses, not as an overlap
    assert drawing.overlaps == ()
    red = _rgb(OVERLAP)
    assert all(image.getpixel((x, y))[:3] != red for x in range(0, image.width, 3) for y in range(0, image.height, 3))
    assert table.y < trace.y and trace.lane != drawing.box("segment 2 RW- zero-fill").lane
    assert image.getpixel((int(trace.x + trace.width - 6), int(trace.y + trace.height / 2)))[:3] == _rgb(
        COLOURS["trace"]
    )


def test_an_overlap_is_painted_red_over_the_shared_bytes_only(tmp_path: Path) -> None:
    regions = [
        MapRegion("segment 0", 0x1000, 0x1000, "segment"),
        MapRegion("segment 1", 0x1800, 0x1000, "segment"),  # its first 0x800 bytes are segment 0's last
        MapRegion("vring0.desc", 0x4000, 0x1000, "desc"),
    ]
    svg = tmp_path / "overlap.svg"
    svg.write_text(render_svg(regions, "overlap"))
    image = _png(svg)
    drawing = plan(regions)
    (overlap,) = drawing.overlaps
    assert (overlap.start, overlap.end, overlap.names) == (0x1800, 0x2000, ("segment 0", "segment 1"))
    red = _rgb(OVERLAP)
    inside = image.getpixel((int(overlap.x + overlap.width - 6), int(overlap.y + overlap.height / 2)))[:3]
    assert all(abs(a - b) < 40 for a, b in zip(inside, red, strict=True))
    seg0 = drawing.box("segment 0")
    above = image.getpixel((int(seg0.x + seg0.width - 6), int(seg0.y + 3)))[:3]
    assert above == _rgb(COLOURS["segment"])  # the bytes only segment 0 holds stay blue
    ring = drawing.box("vring0.desc")
    assert image.getpixel((int(ring.x + ring.width - 6), int(ring.y + ring.height / 2)))[:3] == _rgb(COLOURS["desc"])


def test_a_picture_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "x.svg"
    assert main(["layout", "--base", "0x0", "--svg", str(target)]) == 1
    assert f"{target}: cannot write the picture" in capsys.readouterr().err
