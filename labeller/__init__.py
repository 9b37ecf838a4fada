"""The per-node companion: keeps NFD's feature file and the Node's annotations true.

Layers, each a module: `settings` (flags and environment), `settle` (when a change is
real), `featurefile` (atomic writes NFD can read at any moment), `kube` (the API, its
errors, and the patch that touches only our keys), `events` (udev), `daemon` (the loop
that ties them), `health` (metrics and probes), `cli` (the entry point).
"""
