"""Benchmarks for lcodec: rate-distortion against classical codecs, and speed against CompressAI.

``python -m benchmarks.rd`` runs every codec live on a folder of images and writes RD curves,
BD-rate tables and plots; ``python -m benchmarks.speed`` times lcodec against CompressAI's
reference coding path on the same weights.
"""
