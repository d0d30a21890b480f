"""Every sentence the bot says, in one place."""

from __future__ import annotations

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


def crop_button(crop: bool) -> str:
    return "✂️ Crop: on" if crop else "🖼 Crop: off"


def caption(mask: MaskSpec, faces: int) -> str:
    return f"{mask.emoji} {mask.name} · {faces} face{'' if faces == 1 else 's'}"


def masks_list(masks: list[MaskSpec]) -> str:
    return "\n".join([MASKS_LIST_TITLE, *(mask.button for mask in masks)])
