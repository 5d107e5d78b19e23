"""treediff-jax: tree diffusion for inverse graphics, in JAX."""

import setuptools

setuptools.setup(
  name="treediff-jax",
  version="0.1.0",
  description="Neural diffusion on syntax trees for program synthesis "
  "(inverse graphics), in JAX/Flax.",
  packages=setuptools.find_packages(
    include=["treediff_jax*", "launch*", "data_gen*", "benchmarks*"]
  ),
  # Shipped weights and the bundled example images travel with the code.
  package_data={
    "treediff_jax": [
      "weights/*/*/*",
      "assets/examples/*/*",
    ]
  },
  python_requires=">=3.10",
  install_requires=[
    "jax>=0.5.0",
    "flax>=0.11.0",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11.0",
    "lark>=1.1.9",
    "numpy>=1.26",
    "pillow>=10.0",
    "absl-py>=2.1",
    "ml-collections>=0.1.1",
    "lz4>=4.0",
    "matplotlib>=3.7",
  ],
  extras_require={
    "test": [
      "pytest>=8.0",
      "hypothesis>=6.100",
      "chex>=0.1.87",
      "ruff>=0.6",
      # Reference renderers, used as test oracles only. iceberg-dsl
      # 0.1.2 does not import with newer skia-python.
      "skia-python==87.5",
      "iceberg-dsl==0.1.2",
    ],
    # Only for `benchmarks.input_pipeline --grain` (grain against our pool).
    "bench": ["grain>=0.2.18"],
    "cuda": ["jax[cuda12]>=0.5.0"],
    "tpu": ["jax[tpu]>=0.5.0"],
  },
)
