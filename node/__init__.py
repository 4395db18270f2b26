"""Worker agent: takes tasks from the broker and runs spiders as subprocesses."""
