"""`python -m services.media` runs the media service alone (what its container runs)."""

from services.media.server import main

if __name__ == "__main__":
    main()
