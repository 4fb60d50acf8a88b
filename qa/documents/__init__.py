"""Documents: formats (PDF, Word, web pages, Markdown, text) to paragraphs, and the library folder that holds them."""
