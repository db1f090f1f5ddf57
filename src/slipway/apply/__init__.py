"""Infrastructure as code: a whole platform described by spec files, planned and applied.

``slipway plan`` diffs spec files (one or many YAML documents, a base and per-environment
overlays) against a platform; ``slipway apply`` makes the platform match through each
capability's own service, in dependency order; ``slipway export`` writes a platform as
specs. The platform is either the embedded one or a remote control plane
(:class:`slipway.Client`): both have the same capability attributes, and this package uses
nothing else. Ownership records (:mod:`slipway.apply.ownership`) say which spec set made
which resource, so pruning never reaches what was made by hand.
"""
