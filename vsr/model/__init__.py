"""The model side of vsr: an ONNX super-resolution network, loaded and run.

Resolving a bundled model by name (`registry`), loading it (`load`), the onnxruntime
engines that run it (`engines`, `graph`, `runtime`), cutting a batch into model calls
(`tiling`), choosing the batch size (`batch_size`), int8 checks (`quant`), what a model costs
(`cost`) and the in-memory image API (`images`). It may use `vsr.media` for colour
conversion, never the pipeline.
"""
