"""The solver: grammar tables on the device, edits on token arrays, the
beam search, its rankings and the registry of solving methods."""

from treediff_jax.search.beam import SearchConfig, SearchResult, search
from treediff_jax.search.propose import Proposals, Proposer
from treediff_jax.search.registry import Method, register
from treediff_jax.search.solver import make_solver

__all__ = [
  "Method",
  "Proposals",
  "Proposer",
  "SearchConfig",
  "SearchResult",
  "make_solver",
  "register",
  "search",
]
