from setuptools import find_packages, setup

setup(
    name="lcodec",
    version="0.1.0",
    description="A learned image codec: CompressAI hyperprior, rANS, single-file .lcz bitstreams",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["codec", "codec.*"]),
    package_data={"codec": ["weights/*.safetensors", "weights/*.json"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "compressai>=1.2.6",
        "numpy",
        "click>=8.0",
        "Pillow>=10.0",
        "safetensors>=0.4",
        "tqdm",
        "pytorch_msssim",  # training's differentiable MS-SSIM loss; pure Python on torch
    ],
    extras_require={
        "bench": [
            "matplotlib",
            "bjontegaard",
            "psutil",
            "pillow-jxl-plugin",
            "pillow-heif",
        ],
        "test": ["pytest", "hypothesis", "ruff", "imageio"],
        "fuzz": ["atheris"],
    },
    entry_points={"console_scripts": ["lcodec=codec.cli:main"]},
)
