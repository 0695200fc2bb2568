"""textkit - small, dependency-free text utilities."""

from .case import split_words, to_camel, to_kebab, to_pascal, to_snake
from .distance import levenshtein, similarity
from .indent import dedent, indent
from .inflect import pluralize
from .slug import slugify
from .table import format_table
from .template import TemplateError, render
from .width import display_width
from .wrap import fill, truncate, wrap

__all__ = [
    "TemplateError",
    "dedent",
    "display_width",
    "fill",
    "format_table",
    "indent",
    "levenshtein",
    "pluralize",
    "render",
    "similarity",
    "slugify",
    "split_words",
    "to_camel",
    "to_kebab",
    "to_pascal",
    "to_snake",
    "truncate",
    "wrap",
]

__version__ = "0.4.0"
