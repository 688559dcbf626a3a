"""The two locale files agree with each other and with the keys the code asks for.

* en.json and zh.json hold the same keys, each with the same ``{placeholder}`` names and
  format specs, and every text formats with parameters of the kind the code passes;
* every key the code uses (found by reading the source, not by running the pages) exists,
  f-string keys such as ``tr(f"arch.{a}")`` expanded over the values they can take;
* the Chinese texts really are Chinese, and keep emoji, arrows, plotly hover syntax and
  technical names as they are in English.
"""
from __future__ import annotations

import ast
import json
import re
import string
import unicodedata
from pathlib import Path

import pytest

from core import bias_sims, fairness, jobs, mnist_lab, rnn_lab, schedule_lab, shape_tracer
from core.conv_figures import GRID_LABEL_KEYS
from core.data.domains import SOURCES
from core.gan import dcgan
from core.gan.figures import CYCLE_LABEL_KEYS, GAN_LABEL_KEYS
from core.models.upsampling_generator import UPSAMPLERS
from core.schedules import OPTIMIZERS
from core.viz import FINDER_LABEL_KEYS, SCHEDULE_LABEL_KEYS
from core.vision import backbone as backbones
from core.vision import style
from core.vision.images import SHIPPED
from core.vision.style_figures import LOSS_LABEL_KEYS
from core.models.unet import ENCODERS
from core.models.unet import UPSAMPLERS as UNET_UPSAMPLERS
from core.vision import restore
from core.vision.restore_figures import LOSS_LABEL_KEYS as RESTORE_LOSS_KEYS
from core.vision.restore_figures import QUALITY_LABEL_KEYS
from ui import bias_sections, restoration_sections, style_sections
from ui.common import TRAINING_FIGURE_KEYS
from core.i18n import LANGUAGES, LOCALES, t, t_message
from core.labs import LABS
from core.models import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
RNN_TABS = ("data", "batches", "unroll", "train")  # app_pages/rnn_lab.py's TABS (a page cannot be imported here)
RNN_COMPARISONS = ("written_out_vs_loop", "loop_vs_nn_rnn")  # core.rnn_explore.equivalence's rows
CONV_TABS = ("window", "transposed", "sheet", "checker", "tracer")  # app_pages/conv_lab.py's TABS


def load_locale(language: str) -> dict[str, str]:
    """A locale file, refusing duplicate keys (json.loads would silently keep the last one)."""

    def no_duplicates(pairs):
        keys = [key for key, _ in pairs]
        duplicated = sorted({key for key in keys if keys.count(key) > 1})
        assert not duplicated, f"{language}.json repeats keys: {duplicated}"
        return dict(pairs)

    return json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)


EN = load_locale("en")
ZH = load_locale("zh")
LOCALE_TEXTS = {"en": EN, "zh": ZH}


def assert_for_each(check, cases) -> None:
    """Run ``check`` on every case and fail once, listing every case that failed (one test per key
    would be thousands of tests, half a minute of pytest's overhead)."""
    failures = []
    for case in cases:
        try:
            check(*case) if isinstance(case, tuple) else check(case)
        except AssertionError as error:
            failures.append(f"{case}: {error}")
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures[:40])

# ----- placeholders --------------------------------------------------------------------
PLOTLY_TOKEN = re.compile(r"%\{[^{}]*\}")  # plotly hover template syntax, not str.format
NUMBER = 1234.5678  # for placeholders with a format spec (:.0f, :,, :.3g, :g, :.2f, :.2%)
WORD = "Xy"  # for plain {name} placeholders


def placeholders(text: str) -> dict[str, set[tuple[str, str | None]]]:
    """{name: {(format spec, conversion), ...}} of the str.format fields of a text."""
    found: dict[str, set[tuple[str, str | None]]] = {}
    for _literal, name, spec, conversion in string.Formatter().parse(PLOTLY_TOKEN.sub("", text)):
        if name is not None:
            found.setdefault(name, set()).add((spec or "", conversion))
    return found


def dummy_params(text: str) -> dict[str, object]:
    return {name: NUMBER if any(spec for spec, _ in forms) else WORD
            for name, forms in placeholders(text).items()}


def test_both_languages_are_offered_and_have_a_file():
    assert set(LANGUAGES) == {"en", "zh"}
    for language in LANGUAGES:
        assert (LOCALES / f"{language}.json").is_file()


def test_texts_are_non_empty_strings():
    for language, texts in LOCALE_TEXTS.items():
        bad = [key for key, text in texts.items() if not isinstance(text, str) or not text.strip()]
        assert not bad, f"{language}.json has empty or non-string texts (t() would fall back): {bad}"


def test_locales_have_the_same_keys():
    only_en, only_zh = sorted(set(EN) - set(ZH)), sorted(set(ZH) - set(EN))
    assert not only_en and not only_zh, f"only in en.json: {only_en}; only in zh.json: {only_zh}"


def test_placeholders_match():
    def check(key):
        english, chinese = placeholders(EN[key]), placeholders(ZH.get(key, ""))
        assert english == chinese, f"{key}: en has {english}, zh has {chinese}"
        for name in english:
            assert name.isidentifier(), f"{key}: t() passes keyword parameters only, not {{{name}}}"

    assert_for_each(check, sorted(EN))


def test_plotly_syntax_is_kept():
    def check(key):
        assert sorted(PLOTLY_TOKEN.findall(EN[key])) == sorted(PLOTLY_TOKEN.findall(ZH.get(key, ""))), key
        for tag in ("<extra>", "</extra>"):
            assert EN[key].count(tag) == ZH.get(key, "").count(tag), f"{key}: {tag}"

    assert_for_each(check, sorted(EN))


def test_every_text_formats():
    def check(key, language):
        assert key in LOCALE_TEXTS[language], f"{key} is missing from {language}.json"
        raw = LOCALE_TEXTS[language][key]
        params = dummy_params(raw)
        text = t(key, language, **params)
        if params:
            assert "{" + next(iter(params)) not in text, f"{key} ({language}) left a placeholder unfilled"
            for name, value in params.items():
                if value == WORD:
                    assert WORD in text, f"{key} ({language}) does not show {{{name}}}"
        else:
            assert text == raw, f"{key} ({language}): t() did not return the locale's own text"

    assert_for_each(check, [(key, language) for key in sorted(EN) for language in sorted(LANGUAGES)])


def test_stored_messages_read_in_chinese():
    message = {"key": "run.crashed", "params": {"error": "boom"}, "text": "The run failed: boom"}
    text = t_message(message, "zh")
    assert "boom" in text and CHINESE.search(text)
    assert t_message({"key": "no.such.key", "params": {}, "text": "fallback"}, "zh") == "fallback"


# ----- Chinese, symbols, technical names -----------------------------------------------
CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Keys whose Chinese text is only names and symbols, the same as (or close to) the English.
NOT_CHINESE = {
    "device.gpu",  # "GPU：{name}"
    "dark.channels_last",  # torch's name for the memory layout, as in the code students copy
    "list.separator",  # "、": Chinese punctuation, no characters
    "restore.run_label",  # "{run} · {when} · {stages}": no words
    *(f"rnn.short.{model}" for model in rnn_lab.MODELS),  # "Model0": the lesson's names, on a chart's axis
}
TECHNICAL_NAMES = (
    "MNIST", "CNN", "ResNet", "DenseNet", "BatchNorm", "ResBlock", "conv_layer", "SGD", "SGDR",
    "Adam", "one-cycle", "learn.summary()", "GAN", "DCGAN", "WGAN", "CycleGAN", "U-Net", "Gram",
    "COMPAS", "CIFAR-10", "Darknet", "DAWNBench", "NaN", "GPU", "CPU", "PyTorch", "Model0", "Model5",
    "fast.ai", "?run=<id>", "nn.RNN", "nn.GRU", "BatchNorm1d", "bptt", "xxbos",
)


def symbols(text: str) -> list[str]:
    """Emoji, ▶ ■, arrows: the 'other symbol' characters, plus →."""
    return sorted(ch for ch in text if unicodedata.category(ch) == "So" or ch in "→←↑↓")


def test_not_chinese_list_names_real_keys():
    assert NOT_CHINESE <= set(EN), sorted(NOT_CHINESE - set(EN))


def test_chinese_text_is_chinese():
    def check(key):
        assert CHINESE.search(ZH.get(key, "")), f"zh text of {key} has no Chinese: {ZH.get(key)!r}"

    assert_for_each(check, sorted(set(EN) - NOT_CHINESE))


def test_symbols_and_emoji_are_kept():
    def check(key):
        assert symbols(EN[key]) == symbols(ZH.get(key, "")), key

    assert_for_each(check, sorted(EN))


def test_technical_names_stay_in_latin_letters():
    def check(key):
        missing = [name for name in TECHNICAL_NAMES
                   if name in EN[key] and ZH.get(key, "").count(name) < EN[key].count(name)]
        assert not missing, f"zh text of {key} lost {missing}"

    assert_for_each(check, sorted(EN))


# ----- keys the code uses --------------------------------------------------------------
KEY_FUNCTIONS = {"t", "tr"}
ERROR_CLASSES = {"UserError", "TrainingDiverged", "QuotaExceeded"}
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
STATES = {"queued", "running", "finished", "failed", "cancelled", "interrupted"}


def source_files() -> list[Path]:
    files = [ROOT / "Home.py", *ROOT.glob("app_pages/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("core/**/*.py")]
    return sorted(path for path in files if path.is_file())


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def dynamic_families() -> dict[str, tuple[str, ...]]:
    """For each prefix of an f-string key: the values its hole can take."""
    return {
        "arch.": tuple(REGISTRY),
        "preset.": tuple(mnist_lab.PRESETS),
        "opt.": tuple(mnist_lab.OPTIMIZERS),
        "state.": tuple(sorted(STATES | {jobs.QUEUED, jobs.RUNNING, jobs.FINISHED, jobs.FAILED,
                                         jobs.CANCELLED, jobs.INTERRUPTED})),
        "state_note.": (jobs.CANCELLED, jobs.INTERRUPTED),
        "lab.": tuple(lab.key for lab in LABS),
        "chart.": TRAINING_FIGURE_KEYS,
        "spreset.": schedule_lab.PRESETS,
        "spreset_note.": schedule_lab.PRESETS,
        "spreset_call.": tuple(schedule_lab.PRESET_PARAMETERS),
        "schart.": SCHEDULE_LABEL_KEYS,
        "fchart.": FINDER_LABEL_KEYS,
        "sopt.": tuple(OPTIMIZERS),
        "decay.": schedule_lab.DECAYS,
        "sched.col.": schedule_lab.COLUMNS,
        "dark.inception_": ("stem", "block"),
        "rnn.name.": rnn_lab.MODELS,
        "rnn.short.": rnn_lab.MODELS,
        "rnn.what.": rnn_lab.MODELS,
        "rnn.tab.": RNN_TABS,
        "rnn.same.": RNN_COMPARISONS,
        "rnn.same_left.": RNN_COMPARISONS,
        "rnn.same_right.": RNN_COMPARISONS,
        "rnn.role.": ("i_h", "h_h", "h_o", "bn", "norm", "rnn"),  # the models' layer names
        "rnn.": ("train", "valid"),  # rnn.train_text, rnn.valid_text
        "conv.tab.": CONV_TABS,
        "conv.": ("n", "k", "s", "p", "d", "op"),  # the settings sliders and their help
        "conv.grid.": GRID_LABEL_KEYS,
        "conv.step.": ("window", "stamps", "sheet"),  # ui.conv_sections' steppers
        "conv.up.": UPSAMPLERS,
        "conv.preset.": tuple(shape_tracer.PRESETS),
        "gan.tab.": ("dcgan", "cycle", "fade"),
        "gan.chart.": GAN_LABEL_KEYS + CYCLE_LABEL_KEYS,
        "gan.loss.": dcgan.LOSSES,
        "gan.recipe.": dcgan.LOSSES,
        "gan.chart_caption.": dcgan.LOSSES,
        "gan.domain.": ("digits", "zebra_digits", "horses", "zebras"),
        "gan.source.": SOURCES,
        "gan.col.": ("network", "layer", "kernel", "output", "parameters"),
        "bias.tab.": bias_sections.TABS,
        "bias.by.": fairness.GROUPINGS,
        "bias.rows.": fairness.RISK_ROWS,
        "bias.rule.": bias_sims.FEEDBACK_RULES,
        "bias.rule_what.": bias_sims.FEEDBACK_RULES,
        "bias.fig.": bias_sections.FIGURE_WORDS,
        "bias.fig.sub_": tuple(fairness.GENDER_SHADES.columns[1:]),
        "bias.headline_": ("fpr", "fnr"),
        "bias.model.": ("baseline", "scarce"),
        "bias.col.": ("images", "correct", "error_pct"),  # the per-class table's columns
        "bias.from.": bias_sections.PRESET_BASELINES,
        "style.tab.": style_sections.TABS,
        "style.backbone.": backbones.BACKBONES,
        "style.backbone_about.": backbones.BACKBONES,
        "style.chart.": LOSS_LABEL_KEYS,
        "style.optimizer.": style.OPTIMIZERS,
        "style.picture.": tuple(SHIPPED),
        "style.preset.": style.PRESETS,
        "style.rebuild.": ("content", "style"),
        "style.rebuild_caption.": ("content", "style"),
        "style.start.": style.STARTS,
        "style.chart_caption.": style.MODES,
        "restore.tab.": restoration_sections.TABS,
        "restore.part.": ("input", "enc", "mid", "dec", "up", "head", "output"),  # restore.architecture_table's kinds
        "restore.encoder.": ENCODERS,
        "restore.upsample.": tuple(UNET_UPSAMPLERS),
        "restore.upsample_about.": tuple(UNET_UPSAMPLERS),
        "restore.preset.": restore.PRESETS,
        "restore.stage.": restore.STAGES,
        "restore.chart.": tuple(key for key in RESTORE_LOSS_KEYS + QUALITY_LABEL_KEYS if key not in restore.STAGES),
        "restore.photo_caption.": ("bicubic", "restored", "original"),
        "restore.": restoration_sections.STEP_FIELDS,  # the steps boxes and their help
    }


def called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def template(node: ast.expr) -> str | None:
    """A key expression as text with {} for each computed part, or None if nothing is literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if isinstance(node, ast.JoinedStr):
        return "".join(template(part) if isinstance(part, ast.Constant) else "{}" for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = template(node.left), template(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else "{}") + (right if right is not None else "{}")
    return None


def names_assigned(function: ast.AST, name: str) -> list[str]:
    """String constants assigned to ``name`` in a function, including ``a, b = "x", "y"``."""
    values = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                values += [value for element, value in zip(target.elts, node.value.elts)
                           if isinstance(element, ast.Name) and element.id == name]
    return [value.value for value in values if isinstance(value, ast.Constant) and isinstance(value.value, str)]


class KeyScan:
    """What one pass over the sources found: literal keys, f-string templates, and what it could not read."""

    def __init__(self, error_classes: set[str]):
        self.error_classes = error_classes
        self.used: dict[str, set[str]] = {}  # key -> where it was seen
        self.templates: dict[str, set[str]] = {}
        self.unresolved: list[str] = []

    def add(self, key: str, where: str) -> None:
        self.used.setdefault(key, set()).add(where)

    def add_expression(self, node: ast.expr, where: str) -> bool:
        text = template(node)
        if text is None:
            return False
        if "{}" in text:
            self.templates.setdefault(text, set()).add(where)
        else:
            self.add(text.replace("{{", "{").replace("}}", "}"), where)
        return True

    def scan(self, path: Path) -> None:
        module = parse(path)
        relative = path.relative_to(ROOT).as_posix()
        functions = [node for node in ast.walk(module) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in ast.walk(module):
            where = f"{relative}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and node.args:
                name, first = called_name(node), node.args[0]
                if name in KEY_FUNCTIONS:
                    self.add_expression(first, where)  # tr(key, **params) with a variable key: found elsewhere
                elif name in self.error_classes and not self.add_expression(first, where):
                    enclosing = [f for f in functions if f.lineno <= node.lineno <= f.end_lineno]
                    found = (isinstance(first, ast.Name) and enclosing
                             and names_assigned(min(enclosing, key=lambda f: f.end_lineno - f.lineno), first.id))
                    if found:
                        for key in found:
                            self.add(key, where)
                    else:
                        self.unresolved.append(f"{where}: {name}({ast.unparse(first)}, ...)")
            elif isinstance(node, ast.Dict):  # stored messages: {"key": "run.crashed", "params": ...}
                for dict_key, value in zip(node.keys, node.values):
                    if isinstance(dict_key, ast.Constant) and dict_key.value == "key":
                        self.add_expression(value, where)  # {"key": error.key} passes on a key found elsewhere
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:  # ("i18n.key", "English", {params})
                key, english = node.elts[0], node.elts[1]
                if (isinstance(key, ast.Constant) and isinstance(key.value, str) and KEY_PATTERN.match(key.value)
                        and isinstance(english, ast.Constant) and isinstance(english.value, str)
                        and " " in english.value):
                    self.add(key.value, where)


def error_classes(modules: list[ast.Module]) -> set[str]:
    """UserError, TrainingDiverged, QuotaExceeded and any class derived from them in the sources."""
    found, grew = set(ERROR_CLASSES), True
    while grew:
        grew = False
        for module in modules:
            for node in ast.walk(module):
                if (isinstance(node, ast.ClassDef) and node.name not in found
                        and any(isinstance(base, ast.Name) and base.id in found for base in node.bases)):
                    found.add(node.name)
                    grew = True
    return found


def scan_sources() -> KeyScan:
    files = source_files()
    scan = KeyScan(error_classes([parse(path) for path in files]))
    for path in files:
        scan.scan(path)
    return scan


SCAN = scan_sources()


def expanded_keys(scan: KeyScan) -> tuple[dict[str, set[str]], list[str]]:
    """Every key used, templates expanded; and the templates no value set is known for."""
    keys = {key: set(where) for key, where in scan.used.items()}
    families, unknown = dynamic_families(), []
    for text, where in scan.templates.items():
        prefix = text.split("{}")[0]
        values = families.get(prefix)
        if text.count("{}") != 1 or not values:
            unknown.append(f"{text!r} at {sorted(where)}")
            continue
        for value in values:
            keys.setdefault(text.replace("{}", value), set()).update(where)
    return keys, unknown


def test_scan_finds_the_keys_it_should():
    """Guards the scanner itself: each kind of use is found."""
    keys, _ = expanded_keys(SCAN)
    for key in ("nav.home", "mnist.train", "mnist.layers",  # tr("...") and tr('...') in an f-string
                "mnist.lr_not_number", "mnist.bad_arch", "jobs.quota",  # UserError, QuotaExceeded
                "train.diverged_nan", "train.diverged_exploded",  # TrainingDiverged(key, ...) via a variable
                "run.worker_died", "run.interrupted",  # {"key": ...} messages
                "mnist.lr_risky",  # advice tuples (key, English, params)
                "lab.mnist.title", "lab.darknet.what", "arch.densenet_cnn", "preset.lecture",
                "opt.adam", "state.interrupted", "chart.momentum_axis"):  # expanded f-strings
        assert key in keys, f"the scan missed {key}"
    assert {"QuotaExceeded", "TrainingDiverged"} <= SCAN.error_classes


def test_every_dynamic_key_has_known_values():
    _, unknown = expanded_keys(SCAN)
    assert not unknown, ("f-string keys whose values this test does not know; add them to "
                         f"dynamic_families(): {unknown}")


def test_every_error_key_can_be_read():
    assert not SCAN.unresolved, f"keys the scan could not read (use a string literal): {SCAN.unresolved}"


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_key_used_in_code_exists(language):
    keys, _ = expanded_keys(SCAN)
    texts = LOCALE_TEXTS[language]
    missing = {key: sorted(where) for key, where in keys.items() if key not in texts}
    assert not missing, f"keys used in code but missing from {language}.json: {missing}"
