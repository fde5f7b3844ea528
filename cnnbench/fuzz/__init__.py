"""Property-based fuzzing of layer geometry (``cnnbench fuzz``) and shrinking of failing cases (``cnnbench shrink``).

Every generated configuration becomes a real case (a CaseSpec) checked by the very runner that checks case files:
the float64 NumPy reference with the derived tolerances, the convolution arithmetic's output shape, and
``expect: {error: ...}`` for the geometries PyTorch must reject. A failure is shrunk (hypothesis's shrinker) and
written as a ready-to-commit case file.

Modules: targets (the ops that can be fuzzed, from the reference's registry), strategies (hypothesis strategies
per op family; imports hypothesis), check (a configuration -> case -> row), found (writing a found case file),
engine (the fuzz loop, stored as a run), shrink (shrinking a failing variant of a case file).
"""
