"""VLE Explorer: look inside Variable Length Embeddings (Chiu, Gu and Zhou, 2023).

The Hugging Face Space's entry point: `python app.py` serves the app on the default checkpoint.
The app is the `explorer` package (its __init__ maps its files); the model is `vle_core`.

Settings (environment variables): VLE_CHECKPOINTS (folder of checkpoint folders, default
./checkpoints), VLE_DEFAULT_CHECKPOINT (default vanilla-natural, else the first folder),
VLE_CACHE_DIR (the encodings cache, default ./.cache/encodings), VLE_CACHE_MB (its bound; 0 turns
it off). The limits on uploads, sessions and the queue are in explorer/settings.py.
"""

from explorer import build_demo, queue, settings

demo = queue(build_demo())

if __name__ == "__main__":
    demo.launch(max_file_size=settings.MAX_FILE_SIZE, state_session_capacity=settings.MAX_SESSIONS)
