# fleet-script: fix.cert_enroll
# fleet-version: 2
# Enrolls a new RDP listener certificate from an enterprise CA, or (the undo) removes the one it
# enrolled.
#
# action "enroll" {template, template_oid, bind, valid_days}: `certreq -enroll -machine -q
# -policyserver * TEMPLATE` requests a certificate for the machine (LocalMachine\My) from the
# template, silently (-q: no prompt). An expired certificate is never renewed: "You can only renew
# valid certificates. Expired certificates can't be renewed and must be replaced with a new
# certificate" (certreq, MicrosoftDocs/windowsserverdocs
# WindowsServerDocs/administration/windows-commands/certreq_1.md,
# https://learn.microsoft.com/windows-server/administration/windows-commands/certreq_1).
# certreq's output is localized text: only its exit code is read, and its output goes into the
# error as it is (for the journal). The new certificate is found in Cert:\LocalMachine\My: one
# that was not there before, with its private key, from the template (by OID; by name for a
# version 1 template; lib/certtemplate.ps1), the latest NotBefore. A usable certificate from the
# template already there (an earlier run's, or one Windows enrolled itself under the template
# policy: issued to this host, valid for more than valid_days, a listener EKU) is taken instead,
# so a second run changes nothing. Then NETWORK SERVICE
# (S-1-5-20) gets Read on its key (KB 3042780, lib/certkey.ps1) and, with bind, it is bound to
# RDP-Tcp (Win32_TSGeneralSetting.SSLCertificateSHA1Hash, MicrosoftDocs/win32
# desktop-src/TermServ/win32-tsgeneralsetting.md). The listener needs Server Authentication or
# Remote Desktop Authentication (1.3.6.1.4.1.311.54.1.2) ("Using certificates in Remote Desktop
# Services", https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-certificates):
# a certificate it enrolled without either, or whose key stays unreadable, or that cannot be
# bound, is deleted again with its key before the error: nothing is left half-bound. Answers one
# change: the binding (bind) or the store (no bind), before -> the certificate's thumbprint, and
# `made`: the thumbprint this run enrolled, or null when it took a certificate already there.
# Only `made` goes to the undo: a certificate fleet did not enroll is never deleted.
#
# action "remove" {thumbprint, rebind}: binds `rebind` again when given, then deletes
# `thumbprint` from LocalMachine\My with its private key, unless it is bound. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
# fleet-include: certkey
# fleet-include: certtemplate
$p = $ParamsJson | ConvertFrom-Json
$filter = "TerminalName='RDP-Tcp'"
$binding = 'Win32_TSGeneralSetting(RDP-Tcp).SSLCertificateSHA1Hash'
$listenerEkus = @('1.3.6.1.5.5.7.3.1', '1.3.6.1.4.1.311.54.1.2')
$oidPattern = '^[0-2](\.(0|[1-9][0-9]{0,19})){1,63}$'
# certreq gets the template as an argument of its own: never one it would read as an option.
$namePattern = '^([A-Za-z0-9][A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9._()-]|[A-Za-z0-9])$'

function Get-Bound {
    $ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
    return "$($ts.SSLCertificateSHA1Hash)".ToUpperInvariant()
}

function Set-Bound([string]$Thumbprint) {
    $ts = Get-CimInstance -Namespace root/cimv2/TerminalServices -ClassName Win32_TSGeneralSetting -Filter $filter
    Set-CimInstance -InputObject $ts -Property @{ SSLCertificateSHA1Hash = $Thumbprint }
}

function Test-ListenerEku($Cert) {
    $ekus = Get-EkuOids $Cert
    if ($null -eq $ekus) { return $false }
    return @($ekus | Where-Object { $listenerEkus -contains $_ }).Count -gt 0
}

function Test-FromTemplate($Cert, [string[]]$Names, [string]$TemplateOid, [switch]$AnyUnknown) {
    # Decided by what the certificate carries ([MS-WCCE] 2.2.2.7.7.1 and 2.2.2.7.7.2): a
    # version 2+ certificate names its template by OID (compared with the template's OID when
    # known), a version 1 certificate by name only (compared with $Names: the name asked for
    # and the one Active Directory gives its OID). With -AnyUnknown (a certificate that just
    # arrived, when Active Directory could not give the template's OID) any version 2 template
    # counts: certreq asked for exactly one.
    $id = Get-CertTemplateId $Cert
    if ($id.template_oid) {
        if ($TemplateOid) { return ($id.template_oid -eq $TemplateOid) }
        return [bool]$AnyUnknown
    }
    if ($id.template_name) { return ($Names -contains $id.template_name) }
    return $false
}

function Test-ForThisHost($Cert) {
    # The DNS name the certificate is issued to, by X509NameType.DnsName (its subject
    # alternative name's DNS name; https://learn.microsoft.com/dotnet/api/system.security.cryptography.x509certificates.x509nametype),
    # never by reading the subject text; its first label is the host's name.
    $dns = $Cert.GetNameInfo([System.Security.Cryptography.X509Certificates.X509NameType]::DnsName, $false)
    return ([string]$dns).Split('.')[0] -eq [System.Net.Dns]::GetHostName()
}

function Get-MyThumbprints {
    return @(Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' | ForEach-Object { [string]$_.Thumbprint })
}

function Remove-MyCert([string]$Thumbprint) {
    # Only LocalMachine\My, only the exact path of a bare hex thumbprint (Remove-Item's -Path
    # takes wildcards), with its private key: -DeleteKey, the Certificate provider's parameter of
    # Remove-Item, exists in Windows PowerShell 5.1 and again from PowerShell 7.1
    # (about_Certificate_Provider, MicrosoftDocs/PowerShell-Docs
    # reference/5.1/Microsoft.PowerShell.Security/About/about_Certificate_Provider.md).
    if ($Thumbprint -cnotmatch '^[0-9A-F]{40}$') { return }
    $path = "Cert:\LocalMachine\My\$Thumbprint"
    if (-not (Test-Path -LiteralPath $path)) { return }
    $v = $PSVersionTable.PSVersion
    if ($v.Major -eq 7 -and $v.Minor -lt 1) { throw 'PowerShell 7.0 has no Remove-Item -DeleteKey; use Windows PowerShell 5.1 or PowerShell 7.1+' }
    Remove-Item -Path $path -DeleteKey
}

function Invoke-CertreqEnroll([string]$Template) {
    # certreq's exit code, and its output as text for a person to read (never parsed). Standard
    # error is kept: with $ErrorActionPreference = 'Stop' Windows PowerShell turns redirected
    # stderr lines into terminating errors, so they are collected as records here.
    $command = Get-Command -Name 'certreq.exe' -CommandType Application -ErrorAction Stop | Select-Object -First 1
    $ErrorActionPreference = 'Continue'
    $arguments = @('-enroll', '-machine', '-q', '-policyserver', '*', $Template)
    $lines = @(& $command @arguments 2>&1 | ForEach-Object { [string]$_ })
    return @{ code = $global:LASTEXITCODE; text = ($lines -join ' ').Trim() }
}

function Find-Usable([string[]]$Names, [string]$TemplateOid, [int]$ValidDays) {
    # An earlier run's certificate: from the template, for this host, its key, a listener EKU,
    # valid now and for more than $ValidDays. The latest-expiring one.
    $now = [DateTime]::UtcNow
    $usable = @(Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' | Where-Object {
            $_.HasPrivateKey -and $_.NotBefore.ToUniversalTime() -le $now -and
            $_.NotAfter.ToUniversalTime() -gt $now.AddDays($ValidDays) -and
            (Test-ListenerEku $_) -and (Test-FromTemplate $_ $Names $TemplateOid) -and (Test-ForThisHost $_)
        } | Sort-Object -Property NotAfter -Descending)
    if ($usable.Count -gt 0) { return $usable[0] }
    return $null
}

function Invoke-Enroll {
    $template = [string]$p.template
    if ($template -cnotmatch $oidPattern -and $template -cnotmatch $namePattern) {
        throw "template must be a certificate template name or a dotted OID, not '$template'"
    }
    $templateOid = [string]$p.template_oid
    if ($templateOid -and $templateOid -cnotmatch $oidPattern) { throw "template_oid must be a dotted OID, not '$templateOid'" }
    $validDays = 0
    if ($null -ne $p.valid_days) { $validDays = [int]$p.valid_days }
    $request = $template
    if ($template -cmatch $oidPattern) {
        if (-not $templateOid) { $templateOid = $template }
        # certreq's reference names a template by name; the name Active Directory gives the OID.
        $name = Find-AdTemplate -Oid $template
        if ($name) { $request = $name }
    } elseif (-not $templateOid) {
        $templateOid = Find-AdTemplate -Name $template
    }

    $names = @($template, $request)
    $cert = Find-Usable $names $templateOid $validDays
    $enrolled = $false
    if ($null -eq $cert) {
        $known = Get-MyThumbprints
        $result = Invoke-CertreqEnroll $request
        if ($result.code -ne 0) {
            throw ("certreq -enroll for template '{0}' failed (exit 0x{1:X8}): {2}" -f $request, $result.code, $result.text)
        }
        $new = @(Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' | Where-Object {
                $known -notcontains [string]$_.Thumbprint -and $_.HasPrivateKey -and
                (Test-FromTemplate $_ $names $templateOid -AnyUnknown)
            } | Sort-Object -Property NotBefore -Descending)
        if ($new.Count -eq 0) {
            throw ("certreq -enroll for template '{0}' exited 0, but no new certificate from it with a private key is in LocalMachine\My (a request pending the CA manager's approval?): {1}" -f $request, $result.text)
        }
        $cert = $new[0]
        $enrolled = $true
    }
    $thumb = [string]$cert.Thumbprint
    $before = Get-Bound
    try {
        if (-not (Test-ListenerEku $cert)) {
            throw "template '$request' issued $thumb without the Server Authentication or Remote Desktop Authentication EKU"
        }
        $file = Get-CertKeyFile $cert
        if ($null -ne $file -and -not (Test-NetworkServiceRead $file)) {
            Grant-NetworkServiceRead $file
            if (-not (Test-NetworkServiceRead $file)) { throw "NETWORK SERVICE still cannot read the private key of $thumb ($file)" }
        }
        if ($p.bind -and $before -ne $thumb) {
            Set-Bound $thumb
            if ((Get-Bound) -ne $thumb) { throw "RDP-Tcp did not take $thumb as its certificate" }
        }
    } catch {
        $why = $_.Exception.Message
        if ($enrolled) {
            Remove-MyCert $thumb
            $why = "$why; removed it again with its key"
        }
        throw $why
    }
    $made = $null
    if ($enrolled) { $made = $thumb }
    if ($p.bind) {
        $after = Get-Bound
        return @{ target = $binding; before = $before; after = $after; changed = ($before -ne $after); made = $made }
    }
    return @{ target = "Cert:\LocalMachine\My (template $template)"; before = $null; after = $thumb; changed = $enrolled; made = $made }
}

function Invoke-Remove {
    $thumb = ([string]$p.thumbprint).ToUpperInvariant()
    $rebind = ([string]$p.rebind).ToUpperInvariant()
    foreach ($value in @($thumb, $rebind)) {
        if ($value -and $value -cnotmatch '^[0-9A-F]{40}$') { throw "not a certificate thumbprint: '$value'" }
    }
    $before = Get-Bound
    if ($rebind -and $before -ne $rebind) {
        if ($null -eq (Get-MachineCert $rebind)) { throw "no certificate $rebind with a private key to bind again" }
        Set-Bound $rebind
    }
    $present = $thumb -and (Test-Path -LiteralPath "Cert:\LocalMachine\My\$thumb")
    if ($present -and (Get-Bound) -ne $thumb) { Remove-MyCert $thumb }
    $still = $thumb -and (Test-Path -LiteralPath "Cert:\LocalMachine\My\$thumb")
    $after = Get-Bound
    return @{ target = "Cert:\LocalMachine\My\$thumb"; before = $before; after = $after; changed = ([bool]$present -ne [bool]$still) -or ($before -ne $after) }
}

if ($p.action -eq 'enroll') {
    $change = Invoke-Enroll
} elseif ($p.action -eq 'remove') {
    $change = Invoke-Remove
} else {
    throw "action must be enroll or remove, not '$($p.action)'"
}
Write-Frame @{ changes = @($change) }
