"""What the project's own scripts and tests share to measure and to make media.

The quality protocol (`protocol`), generated test images (`hard_images`) and clips (`media`,
`scene`), the start times of a recording's streams (`recording`), the offline benchmark's
clip and floors (`floors`), the fuzz corpus (`fuzz`, `tolerant_decode`), the networks
that training exports (`networks`) and the int8 ship rule's measurements (`ship_rule`).
Paths (`paths`) point into the source checkout, so this subpackage serves an editable
install (`pip install -e .`) of the repository.

Never imported by the CLI or the library at run time. Pillow, PyTorch and onnx are optional
extras (test, train), so modules import them inside the functions that need them.
"""
