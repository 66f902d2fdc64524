"""Everything ``POST /token`` runs, in order: the client_credentials grant (``client_credentials``),
client authentication (``client_auth``), federated-credential matching (``matching``), minting
(``minting``), and the AADSTS error catalogue every refusal comes from (``aadsts``)."""
