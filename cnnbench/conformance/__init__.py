"""Other people's conformance suites as case files: the ONNX backend node tests and PyTorch's OpInfo samples.

`cnnbench import onnx` and `cnnbench import opinfo` turn them into case files (suite: the writer, onnx_nodes /
onnx_import: the ONNX mapping, opinfo: the OpInfo one). The suites are generated, not written by hand: every test
or sample that cannot be expressed is listed in the suite's SKIPPED.md with its reason.
"""
