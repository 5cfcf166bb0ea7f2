"""What every command of this project shares where it meets the user: the error boundary, and
the names of the options the tools share (Detectron2's wherever it has one).

A command's ``main`` raises; :func:`run_command` turns a user error (a bad config value, missing
weights or dataset, an unusable output folder) into one line ``<prog>: error: <message>`` and
exit status 1, with no traceback. Set ``FOCAL_EIOU_D2_TRACEBACK=1`` to see the traceback instead.
Any other exception is a bug and keeps its traceback.
"""

import argparse
import ast
import contextlib
import os
import sys

TRACEBACK_VARIABLE = "FOCAL_EIOU_D2_TRACEBACK"


class CommandError(Exception):
    """A failure its message explains in full, e.g. a training process that failed after printing
    its own error: reported in one line, like a user error."""


def user_errors():
    """The exception types that mean the user's input is wrong (the message says what to fix)."""
    from focal_eiou_d2.data import DatasetError
    from focal_eiou_d2.engine import OutputDirError, WeightsError

    return (
        CommandError,
        OutputDirError,
        DatasetError,
        WeightsError,
        FileNotFoundError,
        KeyError,
        ValueError,
    )


def error_line(error):
    """The one line a user sees for ``error``: its message (a KeyError's without the quotes)."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error) or type(error).__name__


def run_command(prog, main, argv=None):
    """Call ``main(argv)``; exit with one line and status 1 on a user error (raised by ``main``,
    or by a process it spawned through Detectron2's ``launch``: :func:`spawned_error_line`).

    Args:
        prog (str): the command's name, as the error line starts.
        main (callable): the command's ``main(argv)``.
        argv (list[str] or None): the arguments (None: ``sys.argv[1:]``).

    Returns:
        what ``main`` returns.
    """
    from torch.multiprocessing import ProcessRaisedException

    try:
        return main(argv)
    except (*user_errors(), ProcessRaisedException) as error:
        if isinstance(error, ProcessRaisedException):
            line = spawned_error_line(error)
        else:
            line = error_line(error)
        if line is None or os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
            raise
        sys.exit(f"{prog}: error: {line}")


def spawned_error_line(error):
    """The one line of a user error that a process spawned by ``torch.multiprocessing`` (as
    Detectron2's ``launch`` starts them) raised, or None if it raised another error.

    Args:
        error (torch.multiprocessing.ProcessRaisedException): what ``launch`` raised.
    """
    raised = spawned_exception(error)
    if raised is None:
        return None
    error_type, name, message, _ = raised
    if not (isinstance(error_type, type) and issubclass(error_type, user_errors())):
        return None
    if issubclass(error_type, KeyError):  # the traceback shows a KeyError's message quoted
        with contextlib.suppress(ValueError, SyntaxError):
            message = str(ast.literal_eval(message))
    return message or name.rpartition(".")[2]


def spawned_exception(error):
    """The exception that a process spawned by ``torch.multiprocessing`` raised, read from the
    traceback it sent back as text (its last block's exception line, ``module.Type: message``).

    Args:
        error (torch.multiprocessing.ProcessRaisedException): what ``launch`` raised.

    Returns:
        tuple or None: ``(type, name, message, frames)``: the exception's type as found among the
        modules this process has imported (None if it is not), its name as the traceback gives
        it (e.g. ``torch.distributed.DistStoreError``), its message, and the traceback's lines
        above it (where it was raised); None if the text holds no readable traceback.
    """
    lines = error.msg.rstrip().splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("Traceback (")]
    if not starts:
        return None
    body = lines[starts[-1] + 1 :]
    first = next((index for index, line in enumerate(body) if not line[:1].isspace()), None)
    if first is None:
        return None
    name, _, message = body[first].partition(": ")
    module, _, type_name = name.rpartition(".")
    error_type = getattr(sys.modules.get(module or "builtins"), type_name, None)
    message = "\n".join([message, *body[first + 1 :]]).strip()
    return error_type, name, message, body[:first]


def add_hidden_alias(parser, old_name, dest, **kwargs):
    """Keeps ``old_name`` working as another name of the option stored in ``dest``, unlisted in
    ``--help`` (commands written with it, e.g. in older docs, still run)."""
    parser.add_argument(old_name, dest=dest, help=argparse.SUPPRESS, **kwargs)


def add_opts_arguments(parser, example, trailing=False):
    """Adds ``--opts KEY VALUE ...``, config overrides as Detectron2's demo takes them; with
    ``trailing``, also trailing ``KEY VALUE ...`` as Detectron2's ``train_net.py`` takes them
    (both may be given; :func:`parsed_opts` joins them in command-line order).

    Args:
        parser (argparse.ArgumentParser): the command's parser.
        example (str): an example of YAML overrides for the help text.
        trailing (bool): accept trailing overrides too.
    """
    parser.add_argument(
        "--opts",
        nargs="*",
        action="extend",
        default=[],
        metavar="KEY VALUE",
        help=f"config overrides of every model the command builds, as in Detectron2's demo: KEY "
        f"VALUE pairs for YAML configs, e.g. {example}; key=value for LazyConfig (.py) files",
    )
    if trailing:
        parser.add_argument(
            "trailing_opts",
            nargs=argparse.REMAINDER,
            metavar="KEY VALUE",
            help="config overrides after the options, as train_net.py takes them (as --opts)",
        )


def parsed_opts(parser, args, config_files):
    """The overrides of parsed ``args``: ``--opts``, then the trailing ones (a ``--opts`` among
    them only separates them).

    Exits through ``parser`` if they are not KEY VALUE pairs while no config of
    ``config_files`` is a LazyConfig (whose key=value overrides are checked when it is loaded).

    Returns:
        list[str]: the overrides.
    """
    from focal_eiou_d2.engine import is_lazy_config

    opts = [*args.opts, *(item for item in getattr(args, "trailing_opts", []) if item != "--opts")]
    lazy = any(path and is_lazy_config(path) for path in config_files)
    if not lazy and len(opts) % 2:
        parser.error(f"--opts takes KEY VALUE pairs, got an odd number: {' '.join(opts)}")
    return opts


def add_output_argument(parser, default, help_text):
    """Adds ``--output``, the folder a command writes to (``--output-dir`` is its old name)."""
    parser.add_argument("--output", default=default, metavar="FOLDER", help=help_text)
    add_hidden_alias(parser, "--output-dir", "output")


def add_threshold_argument(parser, default, help_text):
    """Adds ``--confidence-threshold``, Detectron2's demo's name for the lowest score kept, in
    [0, 1] (``--score-threshold`` is its old name); :func:`check_threshold` checks it."""
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=default,
        help=f"{help_text}, in [0, 1] (default: %(default)s)",
    )
    add_hidden_alias(parser, "--score-threshold", "confidence_threshold", type=float)


def check_threshold(parser, args):
    """Exits through ``parser`` if ``--confidence-threshold`` is outside [0, 1] or NaN."""
    if not 0 <= args.confidence_threshold <= 1:
        parser.error(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")


class _OneName(argparse.Action):
    """Sets one of the two ``--names`` (index ``const``): the old ``--name-a`` / ``--name-b``."""

    def __call__(self, parser, namespace, values, option_string=None):
        names = list(namespace.names or (None, None))
        names[self.const] = values
        namespace.names = names


def add_model_arguments(parser, config_required):
    """Adds the options of the two models a picture or a report compares, as ``demo/demo.py``
    names them: model A ``--config-file`` (weights: ``--opts MODEL.WEIGHTS FILE``), model B
    ``--compare-config`` and ``--compare-weights``, their titles ``--names A B``.

    The old names of ``focal_eiou_d2.tools.compare`` still work, unlisted: ``--config-a``,
    ``--weights-a`` (dest ``weights``), ``--config-b``, ``--weights-b``, ``--name-a``,
    ``--name-b``.

    Args:
        parser (argparse.ArgumentParser): the command's parser.
        config_required (bool): whether model A must be given by a config.
    """
    parser.add_argument(
        "--config-file", required=config_required, metavar="FILE", help="config of model A"
    )
    add_hidden_alias(parser, "--config-a", "config_file")
    add_hidden_alias(parser, "--weights-a", "weights")
    parser.add_argument(
        "--compare-config", metavar="FILE", help="config of model B (default: --config-file)"
    )
    add_hidden_alias(parser, "--config-b", "compare_config")
    parser.add_argument(
        "--compare-weights", metavar="FILE", help="trained weights of model B: compares A and B"
    )
    add_hidden_alias(parser, "--weights-b", "compare_weights")
    parser.add_argument("--names", nargs=2, metavar=("A", "B"), help="titles of models A and B")
    for index, side in enumerate("ab"):
        parser.add_argument(
            f"--name-{side}", dest="names", action=_OneName, const=index, help=argparse.SUPPRESS
        )


def refuse_replacing_inputs(outputs, inputs, option):
    """Raises ValueError if writing one of ``outputs`` would replace one of ``inputs`` (the same
    file, also through a link): a tool never draws or reports over what it reads.

    Args:
        outputs (list[str]): the files the command will write.
        inputs (list[str or None]): the files it reads (None: not given).
        option (str): how the user gave the output, for the message, e.g. "--output vis/".
    """
    read = {os.path.realpath(path): path for path in inputs if path}
    replaced = [(path, read.get(os.path.realpath(path))) for path in outputs]
    replaced = [(path, source) for path, source in replaced if source is not None]
    if replaced:
        path, source = replaced[0]
        more = f" (and {len(replaced) - 1} more)" if len(replaced) > 1 else ""
        raise ValueError(
            f"{option}: writing {path} would replace the input {source}{more}; give an output "
            "that is none of the inputs"
        )


def check_weights(weights, side):
    """Raises if model ``side`` ("A" or "B", see :func:`add_model_arguments`) has no weights file
    that may hold weights (:func:`~focal_eiou_d2.tools.train_command.check_weights_file`).

    Raises:
        ValueError: no weights are given; WeightsError: no checkpoint at ``weights``.
    """
    from .train_command import check_weights_file

    option = (
        "--opts MODEL.WEIGHTS FILE (train.init_checkpoint=FILE for a LazyConfig)"
        if side == "A"
        else "--compare-weights FILE"
    )
    if not weights:
        raise ValueError(f"model {side} has no trained weights: give them with {option}")
    check_weights_file(weights, f"the weights of model {side}")
