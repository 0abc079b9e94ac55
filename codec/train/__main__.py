from .commands import train_command

train_command(prog_name="python -m codec.train")
