"""The worker: consume → triage → process → checkpoint (state → produce → sinks → offsets).

`app` wires Faust to the rest; `batch` is the batch step (plain code: triage, processors,
outputs); `checkpoint` commits a batch in order; `state` holds the processors' tables;
`faust_compat` is the one module that touches Faust privates, and says why.
"""
