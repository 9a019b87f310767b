"""Errors a user can fix: a bad file, an impossible edit, a checkpoint that does not load."""

import gradio as gr


class UserError(gr.Error):
    """Shown to the user as its message; logged without a traceback, as it is no fault of the app's."""

    def __init__(self, message: str):
        super().__init__(message, print_exception=False)


class BadImage(UserError):
    """The uploaded file is not an image the app can use: the page clears it."""
