# Shared by gather, fix-cert-bind, fix-cert-key-acl and fix-cert-enroll (`# fleet-include:
# certkey`): find a machine certificate, its EKUs, its private key file, and whether NETWORK
# SERVICE may read that file.
#
# TermService runs as NETWORK SERVICE, so the listener certificate's key file must grant it
# Read (KB 3042780, "Remote Desktop listener certificate configurations":
# https://learn.microsoft.com/troubleshoot/windows-server/remote/remote-desktop-listener-certificate-configurations,
# MicrosoftDocs/SupportArticles-docs support/windows-server/remote/remote-desktop-listener-certificate-configurations.md).
# Accounts are matched by SID only: the account's name is localized (German: NT-AUTORITAET\NETZWERKDIENST, with an umlaut).
$NetworkServiceSid = 'S-1-5-20'
# SIDs in NETWORK SERVICE's token an ACE may grant through: the account S-1-5-20, Everyone
# S-1-1-0, SERVICE S-1-5-6 (added to every service logon), Authenticated Users S-1-5-11 and
# Users S-1-5-32-545 (Well-known SIDs: https://learn.microsoft.com/windows/win32/secauthz/well-known-sids;
# https://learn.microsoft.com/windows/win32/services/networkservice-account).
$NetworkServiceTokenSids = @('S-1-5-20', 'S-1-1-0', 'S-1-5-6', 'S-1-5-11', 'S-1-5-32-545')

function Get-MachineCert {
    # The certificate with this thumbprint and a private key, from LocalMachine\My or \Remote
    # Desktop, else $null. Only the exact Cert:\ path of a validated thumbprint is used.
    param([string]$Thumbprint)
    if ($Thumbprint -cnotmatch '^[0-9A-F]{40}$') { return $null }
    foreach ($store in @('My', 'Remote Desktop')) {
        $path = "Cert:\LocalMachine\$store\$Thumbprint"
        if (Test-Path -LiteralPath $path) {
            $c = Get-Item -LiteralPath $path
            if ($c.HasPrivateKey) { return $c }
        }
    }
    return $null
}

function Get-EkuOids {
    # The OIDs of the certificate's Enhanced Key Usage extension (2.5.29.37), as an array ([]
    # when it has none), or $null when it cannot be read. OIDs, never the friendly names: those
    # are localized.
    param($Cert)
    try {
        $ext = @($Cert.Extensions | Where-Object { $_.Oid.Value -eq '2.5.29.37' }) | Select-Object -First 1
        if ($null -eq $ext) { return , @() }
        $eku = New-Object System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension -ArgumentList @($ext, $ext.Critical)
        return , @(foreach ($oid in $eku.EnhancedKeyUsages) { [string]$oid.Value })
    } catch { return $null }
}

function Get-CertKeyFile {
    # The certificate's private key file, or $null when it cannot be told (callers then report
    # "unknown", never "unreadable"). CNG keys: RSACng.Key.UniqueName under
    # %ProgramData%\Microsoft\Crypto\Keys; CSP keys: CspKeyContainerInfo.UniqueKeyContainerName
    # under %ProgramData%\Microsoft\Crypto\RSA\MachineKeys. RSACertificateExtensions.GetRSAPrivateKey
    # exists from .NET Framework 4.6 and in PowerShell 7 (dotnet/dotnet-api-docs
    # RSACertificateExtensions.xml); on .NET 4.5 X509Certificate2.PrivateKey opens CSP keys only.
    # The name is looked up in both folders: PowerShell 7 may open a CSP key through CNG.
    param($Cert)
    if ($null -eq $Cert -or -not $Cert.HasPrivateKey) { return $null }
    try {
        $rsa = 'System.Security.Cryptography.X509Certificates.RSACertificateExtensions' -as [type]
        if ($null -ne $rsa) { $key = $rsa::GetRSAPrivateKey($Cert) } else { $key = $Cert.PrivateKey }
        if ($null -eq $key) { return $null }
        $name = $null
        if ($key.PSObject.Properties['Key']) {
            $name = [string]$key.Key.UniqueName
        } elseif ($key.PSObject.Properties['CspKeyContainerInfo']) {
            $name = [string]$key.CspKeyContainerInfo.UniqueKeyContainerName
        }
        if (-not $name) { return $null }
        $crypto = Join-Path ([Environment]::GetFolderPath('CommonApplicationData')) 'Microsoft\Crypto'
        foreach ($folder in @('Keys', 'RSA\MachineKeys')) {
            $file = Join-Path (Join-Path $crypto $folder) $name
            if (Test-Path -LiteralPath $file -PathType Leaf) { return $file }
        }
    } catch { $null = $_ }
    return $null
}

function Test-NetworkServiceRead {
    # $true when an Allow entry on the key file gives NETWORK SERVICE (or a group in its token)
    # read access and no Deny entry for them takes it away, else $false. Entries are read with
    # their SIDs. Read access: FILE_READ_DATA (0x1), or GENERIC_ALL (0x10000000) / GENERIC_READ
    # (0x80000000, the sign bit), which key files often carry unmapped. Inherit-only entries do
    # not apply to the file itself.
    param([string]$Path)
    $allowed = $false
    $rules = (Get-Acl -LiteralPath $Path).GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])
    foreach ($rule in $rules) {
        if ($NetworkServiceTokenSids -notcontains $rule.IdentityReference.Value) { continue }
        if (([int]$rule.PropagationFlags -band 2) -ne 0) { continue }
        $mask = [int]$rule.FileSystemRights
        if (($mask -band 0x1) -eq 0 -and ($mask -band 0x10000000) -eq 0 -and $mask -ge 0) { continue }
        if ([string]$rule.AccessControlType -eq 'Deny') { return $false }
        $allowed = $true
    }
    return $allowed
}

function New-NetworkServiceReadRule {
    # The one entry a grant adds: Allow S-1-5-20 FileSystemRights.Read, no inheritance.
    $sid = New-Object System.Security.Principal.SecurityIdentifier -ArgumentList $NetworkServiceSid
    return New-Object System.Security.AccessControl.FileSystemAccessRule -ArgumentList @(
        $sid,
        [System.Security.AccessControl.FileSystemRights]::Read,
        [System.Security.AccessControl.AccessControlType]::Allow
    )
}

function Get-KeyFileAccess {
    # The file's DACL only. FileSecurity(string, AccessControlSections) exists in .NET 4.5 and 7.
    param([string]$Path)
    return New-Object System.Security.AccessControl.FileSecurity -ArgumentList @(
        $Path, [System.Security.AccessControl.AccessControlSections]::Access
    )
}

function Save-KeyFileAccess {
    # Writes back only what changed (the DACL): File.SetAccessControl on .NET Framework,
    # FileSystemAclExtensions.SetAccessControl on PowerShell 7. Not Set-Acl: it first writes
    # every section (the audit one needs SeSecurityPrivilege) and its fallback keeps the audit
    # section when the file's DACL is protected, as key files' often are (PowerShell/PowerShell
    # src/System.Management.Automation/namespaces/FileSystemSecurity.cs, SetSecurityDescriptor).
    param([string]$Path, $Acl)
    $types = [type[]]@([string], [System.Security.AccessControl.FileSecurity])
    if ($null -ne [System.IO.File].GetMethod('SetAccessControl', $types)) {
        [System.IO.File]::SetAccessControl($Path, $Acl)
    } else {
        # Its assembly may not be loaded yet; -as [type] only sees loaded ones.
        try { Add-Type -AssemblyName System.IO.FileSystem.AccessControl } catch { $null = $_ }
        $extensions = 'System.IO.FileSystemAclExtensions' -as [type]
        $extensions::SetAccessControl((New-Object System.IO.FileInfo -ArgumentList $Path), $Acl)
    }
}

function Grant-NetworkServiceRead {
    # Adds the entry of New-NetworkServiceReadRule. Refuses when NETWORK SERVICE has an explicit
    # entry of its own already (an Allow would merge with it, and an undo could not remove only
    # what was added; a Deny would still win): that key needs a person.
    param([string]$Path)
    $acl = Get-KeyFileAccess $Path
    foreach ($rule in $acl.GetAccessRules($true, $false, [System.Security.Principal.SecurityIdentifier])) {
        if ($rule.IdentityReference.Value -eq $NetworkServiceSid) {
            throw "NETWORK SERVICE (S-1-5-20) already has an explicit $($rule.AccessControlType) entry on $Path; fix its key permissions by hand"
        }
    }
    $acl.AddAccessRule((New-NetworkServiceReadRule))
    Save-KeyFileAccess $Path $acl
}

function Revoke-NetworkServiceRead {
    # Removes exactly the entry a grant adds (same SID, rights, flags and type) and nothing else.
    param([string]$Path)
    $acl = Get-KeyFileAccess $Path
    $acl.RemoveAccessRuleSpecific((New-NetworkServiceReadRule))
    Save-KeyFileAccess $Path $acl
}
