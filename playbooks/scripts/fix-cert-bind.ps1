# fleet-script: fix.cert_bind
# fleet-version: 1
# Binds a certificate (with its private key, from LocalMachine\My or \Remote Desktop) to the
# RDP-Tcp listener. Reports the previously bound thumbprint. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
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
