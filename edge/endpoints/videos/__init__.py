"""Image to video: POST /v1/images/img2video, OpenAI's /v1/videos jobs, GET /v1/images/user-videos."""
