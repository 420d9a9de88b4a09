"""A run: composed config -> checked specs -> built components -> training, scores, files."""
