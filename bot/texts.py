"""Every sentence the bot says, in English, in one place: the source of the message catalogs.

Sentences are marked for extraction with :func:`N_` (and plurals with :func:`N_plural`) and
translated where they are said, by a :class:`bot.i18n.Translator` for the chat's language; the
English text is the message id. ``bot/locales/`` holds the catalogs; the README's "Languages"
says how to extract, update and add them.

Errors reach the user through :func:`error_text`, by their code: core and the workers have
sentences of their own for command-line and API users, and this module decides what a chat sees.
Placeholders are ``str.format`` fields (``{seconds}``); a translation keeps every one of them.
"""

from __future__ import annotations

from bot.i18n import ENGLISH, Plural, Translator
from core.errors import FaceMaskError
from core.results import Mode
from masks.catalog import MaskSpec


def N_(message: str) -> str:
    """Marks a sentence for the catalogs; it is translated where it is said."""
    return message


def N_plural(singular: str, plural: str) -> Plural:
    """Marks a sentence with a number in it; each language has its own number of forms."""
    return Plural(singular, plural)


# ----------------------------------------------------------------------------- Telegram's menus

#: the bot's commands and what Telegram's menu says about each (setMyCommands, per language)
COMMANDS = {
    "start": N_("Start: what this bot does"),
    "help": N_("How it works and what happens to your photos"),
    "masks": N_("A picture of all seven masks"),
    "mask": N_("Mask a photo: reply to it with /mask, or /mask 3"),
    "settings": N_("Language, mode and more for this chat"),
    "maskme": N_("Mask your own profile photo"),
}
#: which commands each kind of chat lists in its menu (group admins also see /settings)
PRIVATE_COMMANDS = ("start", "help", "masks", "mask", "maskme", "settings")
GROUP_COMMANDS = ("mask", "maskme", "masks", "help")
GROUP_ADMIN_COMMANDS = ("mask", "maskme", "masks", "help", "settings")

#: the bot's profile (setMyDescription: the empty chat's "What can this bot do?"; 512 at most)
DESCRIPTION = N_(
    "I put masks on the faces in your photos: surgical, N95, cloth, sport or villain. "
    "Send me a photo, tap a mask, and every face in it gets one.\n\n"
    "Groups welcome: add me and send /help there.\n\n"
    "Your photos are processed in memory and never stored."
)
#: setMyShortDescription: the profile page and shared links (120 at most)
SHORT_DESCRIPTION = N_("Masks on every face in your photos. Seven masks, groups welcome.")

# ----------------------------------------------------------------------------- private chats

START = N_(
    "Hi! Send me a photo and pick one of seven masks: I'll put it on every face in the "
    "picture.\n\n"
    "In a group, reply to a photo with /mask@{bot}, or send /help@{bot} there to see what "
    "works in that group.\n\n"
    "More fun: “All 7” sends every mask at once as an album, an album you send gets one "
    "keyboard, “Sticker” puts a masked face in your own sticker set, /maskme masks your "
    "profile photo, and typing my @username in any chat shares your masked photos."
)

HELP = N_(
    "How it works\n"
    "1. Send a photo (or an image as a file, for full quality).\n"
    "2. Tap a mask, 1 to 7. Tap another one any time.\n"
    "3. Crop on: I find every face and mask each one. Crop off: I treat the whole photo "
    "as one face, for close-ups.\n\n"
    "In a hurry? Send a photo with /mask 3 or /mask villain in its caption and I mask it "
    "at once.\n\n"
    "More ways to play:\n"
    "• 🎭 All 7: every mask at once, as one album.\n"
    "• Albums: send up to 10 photos together; one keyboard masks them all, in order.\n"
    "• 🏷 Sticker, under a masked photo: the masked face goes into your own sticker set "
    "(start a private chat with me first).\n"
    "• /maskme: your profile photo gets the mask buttons.\n"
    "• Inline: type my @username and a space in any chat to send your masked photos; "
    "add a mask's name or number to pick it.\n"
    "• 📄 Full quality: the result comes as a file, without Telegram's compression.\n\n"
    "Groups: add me to a group and send /help there: I'll say what works in that group. "
    "/settings picks my language, the mode and more.\n\n"
    "Your photos: I process them in memory and never store them. To keep the buttons "
    "working I remember only Telegram's reference to your last photos, never the pictures."
)

CHOOSE = N_("Pick a mask (1-7). Crop on: every face I find gets one; off: the photo is one face.")
#: {command}: "/mask" in a private chat, "/mask@bot" in a group (privacy mode delivers only that)
MASK_HINT = N_(
    "Reply to a photo with {command} (or {command} 3 to pick mask 3 at once), or send a photo "
    "with {command} in its caption."
)
MASKS_CAPTION = N_("The seven masks. Send me a photo to try them.")
MASKS_LIST_TITLE = N_("The seven masks:")
UNKNOWN_MASK_NAME = N_("I don't know a mask called “{name}”. Use its number or its name:")
PHOTO_GONE = N_("I no longer have that photo. Please send it again.")
TOO_MANY = N_("Too many photos at once. Please wait {seconds} s and try again.")
TOO_BIG = N_("That file is too big for me: Telegram lets bots download files up to {limit} MB.")
NOT_AN_IMAGE = N_(
    "That file is not an image I can read. Please send a JPEG, PNG, WebP or GIF photo."
)
WORKING = N_("Masking...")
INTERNAL_ERROR = N_("Sorry, something went wrong on my side. Please try again.")

#: how many faces a masked photo has, in its caption
FACES = N_plural("{count} face", "{count} faces")

#: what the bot says for each error code (``FaceMaskError.code``)
ERRORS = {
    # the photo
    "not_an_image": NOT_AN_IMAGE,
    "empty": N_("That file is empty (0 bytes). Please send the photo again."),
    "truncated": N_("That image file is cut off or damaged. Please send the photo again."),
    "too_large": N_("That image is too large for me. Please send a photo under 40 megapixels."),
    "too_small": N_("That image is too small to find a face in. Please send a bigger photo."),
    "no_face": N_(
        "I could not find a face in that photo. Try a clearer, front-facing photo, "
        "or switch Crop off to treat the whole photo as one face."
    ),
    "unknown_mask": N_("There is no mask with that number. Masks are numbered 1 to 7."),
    # the workers
    "busy": N_("I'm busy with a lot of photos right now. Please try again in a minute."),
    "timeout": N_(
        "That photo took too long to process. Please try again, or send a smaller photo."
    ),
    "worker_failed": N_("Something went wrong while masking that photo. Please try again."),
    "restarting": N_("I'm restarting. Please try again in a minute."),
    "weights": N_(
        "I can't mask photos right now: my face model is missing. Please try again later."
    ),
    "unreachable": N_(
        "I'm busy: I can't reach my workers right now. Please try again in a minute."
    ),
    "lost": N_("That photo got lost while I was restarting. Please tap the mask again."),
    # moving pictures (bot.video)
    "not_a_video": N_("That file is not a video I can read. Please send an MP4, MOV, WebM or GIF."),
    "video_truncated": N_("That video file is cut off or damaged. Please send the video again."),
    "no_video_stream": N_(
        "That file has sound but no picture. Please send a video with a picture in it."
    ),
    "no_frames": N_("That video has no frames in it. Please send another video."),
    "too_long": N_("That video is too long for me. Please send a clip of at most 60 seconds."),
    "video_too_large": N_(
        "That video's picture is too large for me. Please send a video of at most 4K."
    ),
    "no_face_in_video": N_(
        "I could not find a face in any frame of that video. "
        "Switch Crop off to treat the whole frame as one face."
    ),
    "cancelled": N_("Cancelled: I stopped masking that video as you asked."),
}

#: where a video needs other words than a photo (bot.video; the rest as in ERRORS)
VIDEO_ERRORS = {
    "busy": N_("I'm busy with other videos right now. Please try again in a minute."),
    "timeout": N_("That video took too long to process. Please try again, or send a shorter one."),
    "worker_failed": N_("Something went wrong while masking that video. Please try again."),
    "lost": N_("That video got lost while I was restarting. Please tap the mask again."),
}

#: the masks' names (captions) and labels (buttons) from masks/catalog.json, for the catalogs;
#: a test keeps this list and the catalog in step
MASK_WORDS = (
    # TRANSLATORS: mask names appear in captions; people may also type them after /mask
    N_("Surgical mask"),
    N_("Surgical"),
    N_("N95 cup"),
    N_("N95"),
    N_("N95 with valve"),
    N_("N95 valve"),
    N_("Black cloth mask"),
    N_("Black"),
    N_("Patterned cloth mask"),
    N_("Pattern"),
    N_("Sport mask with two valves"),
    N_("Sport"),
    N_("Half-face respirator"),
    N_("Villain"),
)

#: the mode's button keeps the label users know, "Crop": on finds every face (Mode.FACES),
#: off treats the whole photo as one face (Mode.WHOLE)
MODE_FACES_BUTTON = N_("✂️ Crop: on")
MODE_WHOLE_BUTTON = N_("🖼 Crop: off")

# ----------------------------------------------------------------------------- more fun

ALL_SEVEN = N_("🎭 All 7")
#: a group's compact keyboard: the seven masks, then this, which shows the other buttons
MORE = N_("⋯ More")
QUALITY_ON = N_("📄 Full quality: on")
QUALITY_OFF = N_("🗜 Full quality: off")
STICKER_BUTTON = N_("🏷 Sticker")
ALBUM_CHOOSE = N_(
    "Pick a mask for all {count} photos of this album: they come back as one album, "
    "in the same order. Crop on: every face I find gets one; off: each photo is one face."
)
#: the caption of an album's photo that could not be masked (it is sent as it was)
ALBUM_NO_FACE = N_("No face found in this photo.")
STICKER_WORKING = N_("Making your sticker...")
STICKER_ADDED = N_("Added to your sticker set: {link}")
#: the title of a user's sticker set (64 characters at most)
STICKER_SET_TITLE = N_("My masks by @{bot}")
STICKER_SET_FULL = N_(
    "Your sticker set is full: Telegram allows 120 stickers in one set. Remove some with "
    "@Stickers (/delsticker), then tap Sticker again: {link}"
)
STICKER_START_FIRST = N_(
    "I can only make stickers for people who have started a chat with me: open "
    "t.me/{bot}, press Start, then tap Sticker again."
)
STICKER_FAILED = N_("Telegram did not take that sticker. Please try again later.")
MASKME_NO_PHOTO = N_(
    "I can't see a profile photo of yours: you have none, or your privacy settings hide it "
    "from me. Send me a photo instead."
)
#: the button above inline results that opens the private chat (64 characters at most)
INLINE_BUTTON = N_("Mask a new photo")

# ----------------------------------------------------------------------------- moving pictures

VIDEO_CHOOSE = N_(
    "Pick a mask (1-7) for this video. Crop on: every face I find gets one; off: the whole "
    "frame is one face."
)
#: the message that shows a video's progress, edited in place until the video is sent
VIDEO_PROGRESS = N_("Masking... {percent}%")
VIDEO_CANCEL = N_("✖️ Cancel")
VIDEO_CANCELLING = N_("Cancelling...")
VIDEO_NOT_YOURS = N_("Only the person who asked for this video can cancel it.")
#: before any download, from the length Telegram reports
VIDEO_TOO_LONG = N_(
    "That video is {seconds} seconds long: I mask clips of at most {limit} seconds. "
    "Please send a shorter one."
)
#: the Sticker button under a masked video looked at the first 3 s only (core.video.sticker)
VIDEO_STICKER_NO_FACE = N_(
    "I could not find a face in the first 3 seconds of that video: a moving sticker is made "
    "of those. Switch Crop off to treat the whole frame as one face."
)
#: added to a masked video's caption
VIDEO_SCALED_DOWN = N_("scaled down to {side} px")
VIDEO_CUT_OFF = N_("the file was cut off: these are the frames before the cut")

# ----------------------------------------------------------------------------- groups

#: sent once, when someone adds the bot to a group; what works there follows
WELCOME = N_("Hi everyone! I put masks on the faces in your photos 😷")
GROUP_HELP_TITLE = N_("How to use me in this group:")
GROUP_HOW_ADDRESSED = N_(
    "• Send a photo with /mask@{bot} in its caption, or reply to a photo with /mask@{bot}."
)
GROUP_HOW_BARE = N_("• Or simply /mask in a photo's caption, or mention @{bot} in it.")
GROUP_HOW_DIRECT = N_("• Pick the mask at once: /mask@{bot} 3 or /mask@{bot} villain.")
GROUP_HOW_AUTO = N_("• Auto is on: every photo posted here gets the mask buttons.")
GROUP_HOW_MORE = N_(
    "• /maskme@{bot} masks your profile photo; 🎭 All 7 sends every mask as an album; "
    "🏷 Sticker, under a masked photo, adds it to your own sticker set."
)
GROUP_PRIVACY_ON = N_(
    "Telegram shows me only the messages addressed to me here. To make a plain /mask and "
    "mentions work too, an admin can make me an admin of this group."
)
GROUP_SETTINGS_HINT = N_("Admins: /settings@{bot} picks my language, the mode and more.")
GROUP_PHOTOS_PRIVATE = N_("Photos are processed in memory and never stored.")

# ----------------------------------------------------------------------------- /settings

SETTINGS_TITLE_GROUP = N_("My settings for this group")
SETTINGS_TITLE_PRIVATE = N_("My settings for our chat")
SETTINGS_ABOUT_MODE = N_(
    "Mode: how I read new photos: find every face, or treat the whole photo as one face."
)
SETTINGS_ABOUT_LANGUAGE = N_(
    "Language: the language I speak here. Automatic: each person's Telegram language."
)
SETTINGS_ABOUT_QUIET = N_(
    "Quiet: /mask with a mask number or name gets the masked photo alone, without buttons "
    "to try others."
)
SETTINGS_ABOUT_AUTO = N_(
    "Auto: every photo posted here gets the mask buttons. I must see every message for that: "
    "make me an admin, or switch privacy mode off with @BotFather."
)
SETTING_MODE_FACES = N_("Mode: every face")
SETTING_MODE_WHOLE = N_("Mode: whole photo")
SETTING_LANGUAGE = N_("Language: {language}")
LANGUAGE_AUTOMATIC = N_("Automatic")
SETTING_QUIET_ON = N_("Quiet: on")
SETTING_QUIET_OFF = N_("Quiet: off")
SETTING_AUTO_ON = N_("Auto: on")
SETTING_AUTO_OFF = N_("Auto: off")
SETTINGS_DONE = N_("Done")
SETTINGS_BACK = N_("« Back")
SETTINGS_PICK_LANGUAGE = N_("Pick the language I speak in this chat:")
SETTINGS_SAVED = N_("Saved.")
SETTINGS_CLOSED = N_("Settings saved. Send /settings to change them again.")
SETTINGS_ADMINS_ONLY = N_("Only this group's admins can change my settings.")
AUTO_NEEDS_ACCESS = N_(
    "I can't see every photo in this group yet. Make me an admin, or switch privacy mode "
    "off with @BotFather, then try again."
)

# ----------------------------------------------------------------------------- styles (bot.styles)

STYLE_BUTTON = N_("🎨 Style")
MIX_BUTTON = N_("🎲 Mix")
PALETTE_PICK = N_("Pick a colour or a pattern for this mask.")
STYLE_MINE = N_("🖼 My picture")
#: the palette's colours and patterns, by the id their buttons send (masks.patterns)
STYLE_NAMES = {
    "navy": N_("Navy"),
    "red": N_("Red"),
    "pink": N_("Pink"),
    "green": N_("Green"),
    "yellow": N_("Yellow"),
    "orange": N_("Orange"),
    "purple": N_("Purple"),
    "white": N_("White"),
    "stripes": N_("Stripes"),
    "dots": N_("Dots"),
    "checks": N_("Checks"),
    "camo": N_("Camo"),
    "hearts": N_("Hearts"),
    "stars": N_("Stars"),
    "plaid": N_("Plaid"),
    "gradient": N_("Gradient"),
}
MIX_NAME = N_("Mix: a different mask on every face")
PATTERN_SAVED = N_(
    "Saved: this picture is now your pattern. Under a masked photo, tap 🎨 Style and then "
    "🖼 My picture. /pattern off forgets it."
)
PATTERN_OFF = N_("Your picture is forgotten: I no longer keep even Telegram's reference to it.")
PATTERN_NONE = N_("You have no picture saved.")
PATTERN_HINT = N_(
    "Send a picture with /pattern as its caption, or reply to a masked photo with a picture, "
    "and I'll print it on the mask. /pattern off forgets it."
)
ERRORS.update(
    {
        "unknown_style": N_("I don't know that colour or pattern."),
        "pattern_not_image": N_(
            "That file is not a picture I can print on a mask. Please send a JPEG, PNG or WebP."
        ),
        "pattern_too_small": N_(
            "That picture is too small to print on a mask: it needs at least 64 pixels a side."
        ),
        "pattern_too_large": N_(
            "That picture is too large to print on a mask: please send one under 10 MB and "
            "25 megapixels."
        ),
        "pattern_animated": N_("That picture moves: please send a still picture to print."),
    }
)


def style_label(style_id: str, t: Translator = ENGLISH) -> str:
    """What a style is called in a caption or on a button: its name, or "My picture"."""
    name = STYLE_NAMES.get(style_id)
    if name is not None:
        return t(name)
    return t(STYLE_MINE) if style_id == "own" else style_id


#: answers given in a callback query's alert or toast: Telegram shows 200 characters at most
ALERTS = (
    PHOTO_GONE,
    TOO_MANY,
    WORKING,
    ERRORS["unknown_mask"],
    SETTINGS_SAVED,
    SETTINGS_ADMINS_ONLY,
    AUTO_NEEDS_ACCESS,
    STICKER_WORKING,
    VIDEO_CANCELLING,
    VIDEO_NOT_YOURS,
)


def error_text(error: FaceMaskError, t: Translator = ENGLISH) -> str:
    """The sentence for ``error``'s code; the error's own sentence for codes not listed."""
    sentence = ERRORS.get(error.code)
    return t(sentence) if sentence is not None else str(error)


def video_error_text(error: FaceMaskError, t: Translator = ENGLISH) -> str:
    """:func:`error_text` for a video: "that video", not "that photo", where it matters."""
    sentence = VIDEO_ERRORS.get(error.code)
    return t(sentence) if sentence is not None else error_text(error, t)


def video_caption(
    mask: MaskSpec, t: Translator = ENGLISH, *, scaled_to: int | None = None, cut_off: bool = False
) -> str:
    """A masked video's caption: the mask, and whether it was scaled down or cut off."""
    parts = [f"{mask.emoji} {t(mask.name)}"]
    if scaled_to:
        parts.append(t(VIDEO_SCALED_DOWN, side=scaled_to))
    if cut_off:
        parts.append(t(VIDEO_CUT_OFF))
    return " · ".join(parts)


def mode_button(mode: Mode, t: Translator = ENGLISH) -> str:
    """The mode's button: "Crop" on means find every face, off means the whole photo."""
    return t(MODE_FACES_BUTTON) if mode is Mode.FACES else t(MODE_WHOLE_BUTTON)


def quality_button(as_file: bool, t: Translator = ENGLISH) -> str:
    """The toggle's label: full quality on sends results as files, without recompression."""
    return t(QUALITY_ON) if as_file else t(QUALITY_OFF)


def mask_button(mask: MaskSpec, t: Translator = ENGLISH) -> str:
    """A mask's button, e.g. ``"1 😷 Surgical"``: the number stays first in every language."""
    return f"{mask.id} {mask.emoji} {t(mask.label)}"


def caption(mask: MaskSpec, faces: int, t: Translator = ENGLISH) -> str:
    return f"{mask.emoji} {t(mask.name)} · {t.plural(FACES, faces, count=faces)}"


def masks_list(masks: list[MaskSpec], t: Translator = ENGLISH) -> str:
    return "\n".join([t(MASKS_LIST_TITLE), *(mask_button(mask, t) for mask in masks)])
