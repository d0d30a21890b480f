"""Moving pictures: decode and encode (``codec``), faces followed from frame to frame
(``tracking``), and the mask on every frame (``masking``), through what they need of the
masker (``masker``, a Protocol). Video may use every photo stage.
"""
