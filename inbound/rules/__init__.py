"""The rules that decide what a mail is, one small pure module each (order: `pipeline.RULES`)."""
