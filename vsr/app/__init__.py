"""What a user calls: the command line and the commands behind it.

`cli` parses arguments and turns errors into one line and an exit status; `batch` runs many
inputs; `info`, `compare` (with `compare_page`) and `progress` are the commands and displays
around an upscale.
"""
