"""Images in and out without ROS: image files, videos, bags, image messages, sample photos,
drawing."""
