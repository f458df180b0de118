from pubdata.cli.main import app

app()
