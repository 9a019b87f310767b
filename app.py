"""VLE Explorer: look inside Variable Length Embeddings (Chiu, Gu and Zhou, 2023).

The Hugging Face Space's entry point: `python app.py` serves the app on the default checkpoint.
The app is the `explorer` package (its __init__ maps its files); the model is `vle_core`.

Settings (environment variables): VLE_CHECKPOINTS (folder of checkpoint folders, default
./checkpoints), VLE_DEFAULT_CHECKPOINT (default vanilla-natural, else the first folder),
VLE_CACHE_DIR (the encodings cache, default ./.cache/encodings), VLE_CACHE_MB (its bound).
"""

from explorer import build_demo, settings

demo = build_demo()

if __name__ == "__main__":
    demo.queue(max_size=32, default_concurrency_limit=4).launch(max_file_size=settings.MAX_FILE_SIZE)
