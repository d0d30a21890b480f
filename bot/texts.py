"""Every sentence the bot says, in one place.

Errors reach the user through :func:`error_text`, by their code: core and the workers have
sentences of their own for command-line and API users, and this module decides what a chat sees.
"""

from __future__ import annotations

from core.errors import FaceMaskError
from core.results import Mode
from masks.catalog import MaskSpec

COMMANDS = {
    "start": "Start: what this bot does",
    "help": "How it works and what happens to your photos",
    "masks": "A picture of all seven masks",
    "mask": "In groups: reply to a photo with /mask",
}

START = (
    "Hi! Send me a photo and pick one of seven masks: I'll put it on every face in the "
    "picture.\n\n"
    "In a group, add /mask to a photo's caption, mention me, or reply to a photo with /mask."
)

HELP = (
    "How it works\n"
    "1. Send a photo (or an image as a file, for full quality).\n"
    "2. Tap a mask, 1 to 7. Tap another one any time.\n"
    "3. Crop on: I find every face and mask each one. Crop off: I treat the whole photo "
    "as one face, for close-ups.\n\n"
    "Groups: add /mask to a photo's caption, mention me in it, or reply to a photo with "
    "/mask. Anyone in the group can tap the buttons.\n\n"
    "Your photos: I process them in memory and never store them. To keep the buttons "
    "working I remember only Telegram's reference to your last photos, never the pictures."
)

CHOOSE = "Pick a mask (1-7). Crop on: every face I find gets one; off: the photo is one face."
MASK_HINT = "Reply to a photo with /mask, or send a photo with /mask in its caption."
MASKS_CAPTION = "The seven masks. Send me a photo to try them."
MASKS_LIST_TITLE = "The seven masks:"
PHOTO_GONE = "I no longer have that photo. Please send it again."
TOO_MANY = "Too many photos at once. Please wait {seconds} s and try again."
TOO_BIG = "That file is too big for me: Telegram lets bots download files up to {limit} MB."
NOT_AN_IMAGE = "That file is not an image I can read. Please send a JPEG, PNG, WebP or GIF photo."
WORKING = "Masking..."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."

#: what the bot says for each error code (``FaceMaskError.code``)
ERRORS = {
    # the photo
    "not_an_image": NOT_AN_IMAGE,
    "empty": "That file is empty (0 bytes). Please send the photo again.",
    "truncated": "That image file is cut off or damaged. Please send the photo again.",
    "too_large": "That image is too large for me. Please send a photo under 40 megapixels.",
    "too_small": "That image is too small to find a face in. Please send a bigger photo.",
    "no_face": (
        "I could not find a face in that photo. Try a clearer, front-facing photo, "
        "or switch Crop off to treat the whole photo as one face."
    ),
    "unknown_mask": "There is no mask with that number. Masks are numbered 1 to 7.",
    # the workers
    "busy": "I'm busy with a lot of photos right now. Please try again in a minute.",
    "timeout": "That photo took too long to process. Please try again, or send a smaller photo.",
    "worker_failed": "Something went wrong while masking that photo. Please try again.",
    "restarting": "I'm restarting. Please try again in a minute.",
    "weights": "I can't mask photos right now: my face model is missing. Please try again later.",
}


def error_text(error: FaceMaskError) -> str:
    """The sentence for ``error``'s code; the error's own sentence for codes not listed."""
    return ERRORS.get(error.code, str(error))


def crop_button(mode: Mode) -> str:
    """The toggle's label: "Crop" on means find every face, off means the whole photo."""
    return "✂️ Crop: on" if mode is Mode.FACES else "🖼 Crop: off"


def caption(mask: MaskSpec, faces: int) -> str:
    return f"{mask.emoji} {mask.name} · {faces} face{'' if faces == 1 else 's'}"


def masks_list(masks: list[MaskSpec]) -> str:
    return "\n".join([MASKS_LIST_TITLE, *(mask.button for mask in masks)])
