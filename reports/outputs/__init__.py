"""The files that leave the books, and their independent reader.

`reports/` works figures out; this package only writes them: the command line's tables
(`render`), the close package with its workbook and HTML summary (`package`,
`summary_html`), the ERP journal files and the import rules each must pass (`exports`,
`erp_rules`), the beancount ledger (`beancount_export`), and `verify_package`, which reads
a package back knowing nothing of how it was written.
"""
