"""The PyAV side of vsr: what is read from and written to containers.

Opening and probing an input, decoding it, making its timestamps usable, pixel formats and
colour conversion, the output container, its streams and encoders, and the metadata an
output must repeat (aspect, HDR, rotation). Nothing here knows about the model or threads;
it imports only the shared modules at the top of `vsr`.
"""
