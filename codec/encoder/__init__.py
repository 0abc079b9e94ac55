"""Latents from pixels, chosen for a quality, a target or an effort.

``analysis.py`` runs the analysis transform once per image and codes it at any operating point
(through the architecture's latent coder); ``ratecontrol.py`` searches the quality that meets a
bpp, size or PSNR target; ``effort.py`` optimises the latents for one image, on the relaxed
objective ``sga.py`` holds for each architecture.
"""
