"""The streaming pipeline: the stage threads and what supervises them.

`pipeline.Pipeline` wires a source thread (`source`, or `live` for real-time input), the
model stage (`model_stage`), the compose stage (`compose`) and the sink (`sink`) with bounded
channels; `run` is what every kind of run presents to its caller; `interrupts` turns Ctrl-C
and SIGTERM into clean stops; `preview` serves the live preview. The only package that knows
every stage.
"""
