"""Every environment variable the code reads is documented: in the README's configuration table
and in .env.example (the guide: "Keep the README true … every env var")."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READS = [
    re.compile(r'\benv(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"'),  # django-environ in settings.py
    re.compile(r'\benviron(?:\.get)?[\[(]\s*"([A-Z][A-Z0-9_]+)"'),  # os.environ elsewhere
]
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}  # set by manage.py / wsgi.py, not by the operator


def variables_read() -> set[str]:
    files = [ROOT / "martingale_project" / "settings.py", ROOT / "gunicorn.conf.py"]
    files += sorted((ROOT / "lanes").rglob("*.py")) + sorted((ROOT / "settings_app").rglob("*.py"))
    names = set()
    for path in files:
        text = path.read_text()
        for pattern in READS:
            names.update(pattern.findall(text))
    return names - NOT_SETTINGS


def test_every_variable_the_code_reads_is_in_the_readme_and_env_example():
    names = variables_read()
    assert {"DATABASE_URL", "SECRET_KEY", "SIMULATOR_FOLDER", "SIMULATOR_KEEP_DAYS"} <= names  # the scan finds them
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    table = {name for line in readme.splitlines() if line.startswith("| `") for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    assert sorted(names - table) == [], "not in the README's configuration table"
    assert sorted(name for name in names if not re.search(rf"\b{name}=", example)) == [], "not in .env.example"
