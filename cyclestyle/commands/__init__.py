"""The subcommands of the ``cyclestyle`` program, one module each.

Every module here follows one convention:

    HELP             the one-line help ``cyclestyle --help`` lists
    DESCRIPTION      the text above the options of ``cyclestyle NAME --help``
    EPILOG           the text below them (examples), or None
    FORMATTER_CLASS  argparse's formatter for the two texts
    add_arguments(parser)  adds the command's options to its (sub)parser
    run(args) -> int       does the work and returns the exit status

A command module holds what belongs to the command line (options, their checks, the lines it
prints); the work is a plain function of the library (``cyclestyle.evaluation.evaluate.evaluate``,
``cyclestyle.inference.files.translate_files`` …), which is also the Python API
(``cyclestyle/__init__.py``). Modules import the library inside ``run`` so that ``cyclestyle
--help`` answers without loading torch. ``cyclestyle.cli`` lists the commands in one table; a new
command is one module here and one line there.
"""
