"""Stage 3, render: a mask drawn onto a face's 68 points.

The warp of a mask picture onto the points (``warp``), hiding a mask the person already
wears (``cover``), and the sticker cut-out (``sticker``). Render may import keypoints (the
68-point scheme), never detection or video.
"""
