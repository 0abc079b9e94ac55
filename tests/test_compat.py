"""Every file in the compatibility corpus decodes, by every later lcodec, to what it always did.

The entropy-decoded latents must match bit for bit (the format's promise on any device); the
pixels come out of the float synthesis transform, which may round differently on another CPU,
so they must match the reference within one level (and exactly on the machine that wrote them).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from compat import ROOT, latent_digest, pixel_digest
from PIL import Image

import codec
from codec.net.zoo import releases

MANIFESTS = sorted(ROOT.glob("*/manifest.json"))
CASES = [
    pytest.param(path.parent, entry, id=f"{path.parent.name}/{entry['file']}")
    for path in MANIFESTS
    for entry in json.loads(path.read_text())["files"]
]


def test_every_release_has_a_corpus_covering_every_format_version_it_writes():
    from codec.net import architecture

    corpora = {path.parent.name: json.loads(path.read_text()) for path in MANIFESTS}
    for w in releases():
        assert w.model_id in corpora, w.model_id
        versions = {e["format_version"] for e in corpora[w.model_id]["files"]}
        assert versions == set(architecture(w.manifest["architecture"]).writes), w.model_id


@pytest.mark.parametrize(("folder", "entry"), CASES)
def test_corpus_file_decodes_as_it_always_did(folder, entry):
    data = (folder / entry["file"]).read_bytes()
    assert codec.info(data)["format_version"] == entry["format_version"]
    assert latent_digest(data) == entry["latents_sha256"]
    pic = codec.decode(data, device="cpu")
    with Image.open(folder / entry["pixels"]) as im:
        ref = np.asarray(im)
        ref_icc = im.info.get("icc_profile")
    assert pic.mode == entry["mode"] and pic.pixels.shape == ref.shape
    assert pic.icc_profile == ref_icc
    if pixel_digest(pic.pixels) != entry["pixels_sha256"]:
        diff = np.abs(pic.pixels.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


REFINED = [case for case in CASES if "refinement_form" in case.values[1]]


def test_each_refinement_corpus_covers_both_forms():
    folders = {case.values[0] for case in REFINED}
    assert folders, "no refinement corpus"
    for folder in folders:
        forms = {case.values[1]["refinement_form"] for case in REFINED if case.values[0] == folder}
        assert forms == {1, 2}, folder


@pytest.mark.parametrize(("folder", "entry"), REFINED)
def test_refinement_corpus_files_carry_their_refinement(folder, entry):
    c = codec.bitstream.unpack((folder / entry["file"]).read_bytes())
    assert c.refinement is not None and c.refinement[0] == entry["refinement_form"]
