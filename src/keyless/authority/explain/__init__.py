"""The dry run of a federated client assertion: each check's verdict, with fixes
(``fixes``) and GitHub Actions subject comparisons (``github``)."""
