"""The map of labs: what Home shows, which page each opens, and which runner trains it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    key: str  # i18n keys lab.<key>.title and lab.<key>.what
    part: int  # fast.ai course part (1 or 2) ...
    lesson: int  # ... and lesson number
    page: str | None  # the page file under app_pages/, None while the lab is not built yet
    icon: str
    prefix: str = ""  # the page's session-state prefix: where it keeps the id of the run it shows
    kinds: tuple[str, ...] = ()  # the kinds of run its page shows


LABS = (
    Lab("mnist", 1, 7, "app_pages/mnist_lab.py", "🔢", "mnist", ("mnist",)),
    Lab("schedules", 2, 13, "app_pages/schedule_lab.py", "📈", "sched", ("schedule",)),
    Lab("convolutions", 2, 12, "app_pages/conv_lab.py", "🧮", "conv", ("checkerboard",)),
    Lab("style", 2, 13, "app_pages/style_lab.py", "🎨", "sty", ("style",)),
    Lab("gans", 2, 12, "app_pages/gan_lab.py", "🌀", "gan", ("gan", "cyclegan")),
    Lab("restoration", 1, 7, "app_pages/restoration_lab.py", "🪄", "rst", ("restore",)),
    Lab("rnn", 1, 7, "app_pages/rnn_lab.py", "🔁", "rnn", ("rnn",)),
    Lab("bias", 2, 13, "app_pages/bias_lab.py", "⚖️", "bias"),
    Lab("darknet", 2, 12, "app_pages/darknet_lab.py", "🏎️", "dark", ("darknet",)),
)


def lab_of_kind(kind: str) -> Lab | None:
    """The lab whose page shows runs of this kind (None for runs no page opens, such as the LR finder's)."""
    return next((lab for lab in LABS if kind in lab.kinds), None)


# Spec kind -> "module:function" telling which size preset (quick, demo, lecture) a run's work amounts
# to, whatever preset it was started from: the instructor's size limit goes by this.
SIZERS = {
    "mnist": "core.mnist_lab:size_of_values",
    "schedule": "core.schedule_lab:size_of_values",
    "darknet": "core.darknet_lab:size_of_values",
    "rnn": "core.rnn_lab:size_of_values",
    "checkerboard": "core.checkerboard_lab:size_of_values",
    "gan": "core.gan.dcgan:size_of_values",
    "cyclegan": "core.gan.cyclegan:size_of_values",
    "style": "core.vision.style:size_of_values",
    "restore": "core.vision.restore:size_of_values",
}

# Spec kind -> "module:function" that a worker process imports to train it.
RUNNERS = {
    "mnist": "core.mnist_lab:run_mnist",
    "schedule": "core.schedule_lab:run_schedule",
    "lr_finder": "core.schedule_lab:run_lr_finder",
    "darknet": "core.darknet_lab:run_darknet",
    "rnn": "core.rnn_lab:run_rnn",
    "checkerboard": "core.checkerboard_lab:run_checkerboard",
    "gan": "core.gan.dcgan:run_gan",
    "cyclegan": "core.gan.cyclegan:run_cyclegan",
    "style": "core.vision.style:run_style",
    "restore": "core.vision.restore:run_restore",
}
