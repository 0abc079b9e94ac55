"""What every harness shares: images, codecs, metrics, BD-rate, plots, JSON, anchors, curves,
timing, memory, the reference path and the argument parser. Nothing here imports a harness."""
