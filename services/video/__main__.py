"""`python -m services.video` runs the video service alone (what its container runs)."""

from services.video.server import main

if __name__ == "__main__":
    main()
