# fleet-script: fix.cert_key_acl
# fleet-version: 1
# Gives (`read`: true) or takes back (`read`: false) NETWORK SERVICE's Read on a machine
# certificate's private key file. TermService runs as NETWORK SERVICE and must read the listener
# certificate's key (KB 3042780 "Remote Desktop listener certificate configurations":
# https://learn.microsoft.com/troubleshoot/windows-server/remote/remote-desktop-listener-certificate-configurations).
# By SID S-1-5-20 only, never by the account's localized name (lib/certkey.ps1). A grant adds one
# entry (Allow S-1-5-20 FileSystemRights.Read) and only when NETWORK SERVICE cannot read the key
# and has no explicit entry of its own; taking back removes exactly that entry, so the undo of a
# grant removes only what the grant added. Answers whether NETWORK SERVICE can read the key,
# before/after. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
# fleet-include: certkey
$p = $ParamsJson | ConvertFrom-Json
$thumb = ([string]$p.thumbprint).ToUpperInvariant()
if ($p.read -isnot [bool]) { throw "read must be true or false" }
$cert = Get-MachineCert $thumb
if ($null -eq $cert) { throw "no certificate $thumb with a private key in LocalMachine\My or \Remote Desktop" }
$file = Get-CertKeyFile $cert
if ($null -eq $file) { throw "the private key file of $thumb is not under $env:ProgramData\Microsoft\Crypto (Keys or RSA\MachineKeys)" }

$before = Test-NetworkServiceRead $file
if ($p.read -and -not $before) { Grant-NetworkServiceRead $file }
if (-not $p.read -and $before) { Revoke-NetworkServiceRead $file }
$after = Test-NetworkServiceRead $file
$change = @{ target = "private key of ${thumb}: NETWORK SERVICE (S-1-5-20) Read"; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
