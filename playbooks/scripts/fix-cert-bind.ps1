# fleet-script: fix.cert_bind
# fleet-version: 1
# Binds a certificate (with its private key, from LocalMachine\My or \Remote Desktop) to the
# RDP-Tcp listener. Reports the previously bound thumbprint. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1: without this, arrays serialize as {"value":[...],"Count":n}.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

function Write-Frame($doc) {
    # One frame. Non-ASCII is escaped so it survives any console code page, and < > so no value
    # can fake a frame marker (Windows PowerShell's serializer escapes them, PowerShell 7's does not).
    $json = ConvertTo-Json -InputObject $doc -Depth 6 -Compress
    $escape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
    Write-Output ('<<FLEET-JSON>>' + [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $escape) + '<<FLEET-END>>')
}
$p = $ParamsJson | ConvertFrom-Json
$thumb = ([string]$p.thumbprint).ToUpperInvariant()
# Cert:\LocalMachine\<store>\<thumbprint> names one certificate exactly; a store that does not
# exist (Remote Desktop appears once Windows issues its first self-signed one) is skipped.
$cert = $null
if ($thumb -match '^[0-9A-F]{40}$') {
    foreach ($store in @('My', 'Remote Desktop')) {
        $path = "Cert:\LocalMachine\$store\$thumb"
        if (Test-Path -LiteralPath $path) {
            $c = Get-Item -LiteralPath $path
            if ($c.HasPrivateKey) { $cert = $c; break }
        }
    }
}
if ($null -eq $cert) { throw "no certificate $thumb with a private key in LocalMachine\My or \Remote Desktop" }

$filter = "TerminalName='RDP-Tcp'"
$ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
$before = "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
if ($before -ne $thumb) {
    Set-CimInstance -InputObject $ts -Property @{ SSLCertificateSHA1Hash = $thumb }
}
$ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
$after = "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
$change = @{ target = 'Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash'; before = $before; after = $after; changed = ($before -ne $after) }
Write-Frame @{ changes = @($change) }
